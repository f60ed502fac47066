/**
 * The PQ ratchet's surface for ratchet v2 (formats-v2 §5). Internal to core
 * until ratchet v2 is exported: the session layer is its only user.
 */
export {
  MAX_CHUNKS_PER_MESSAGE,
  MAX_PQ_EXCHANGE,
  MAX_PQ_CHUNKS_BYTES,
  type PqChunks,
  PqKind,
  decodePqChunks,
  encodePqChunks,
  pqChunksToCbor,
  readPqChunks,
} from './chunks.ts';
export { PQ_SECRET_BYTES, mlkemEncapsulationKeyValid } from './kem.ts';
export {
  BURST_CHUNKS,
  CHUNKS_PER_MESSAGE,
  type PqSendResult,
  type PqStep,
  type PqStepResult,
  QUIET_RATIO,
  pqOnReceive,
  pqOnSend,
  pqSecretForStep,
} from './ratchet.ts';
export {
  CT_CHUNKS,
  EK_CHUNKS,
  MAX_PQ_STATE_BYTES,
  type PqPhase,
  type PqRole,
  type PqState,
  decodePqState,
  encodePqState,
  initialPqState,
  pqRootEpoch,
  pqStateToCbor,
  readPqState,
} from './state.ts';
