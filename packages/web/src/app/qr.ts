/** A QR code on a canvas (no image URL needed, so the page's CSP stays strict). Encoding by `uqr`. */
import { encode } from 'uqr';

/** Pixels per QR module; with the quiet zone a version-4 code of an account id is 205 px. */
const MODULE_PX = 5;
/** Quiet zone around the code, in modules (the QR standard asks for 4). */
const QUIET = 4;

export function qrCanvas(text: string, testId: string): HTMLCanvasElement {
  const { data, size } = encode(text, { ecc: 'M', border: 0 });
  const canvas = document.createElement('canvas');
  const side = (size + 2 * QUIET) * MODULE_PX;
  canvas.width = side;
  canvas.height = side;
  canvas.setAttribute('data-testid', testId);
  canvas.setAttribute('data-modules', String(size));
  const g = canvas.getContext('2d');
  if (!g) return canvas;
  g.fillStyle = '#fff';
  g.fillRect(0, 0, side, side);
  g.fillStyle = '#000';
  data.forEach((row, y) => {
    row.forEach((dark, x) => {
      if (dark) g.fillRect((x + QUIET) * MODULE_PX, (y + QUIET) * MODULE_PX, MODULE_PX, MODULE_PX);
    });
  });
  return canvas;
}
