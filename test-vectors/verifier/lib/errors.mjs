/** A refusal with one of the error codes of spec/06-errors.md. */
export class ProtocolError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

export const fail = (code, message) => {
  throw new ProtocolError(code, message);
};
