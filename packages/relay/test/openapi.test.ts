// spec/openapi.json is generated from the route schemas; it must not drift.
// Regenerate with: node --import tsx packages/relay/scripts/openapi.ts
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPENAPI_PATH, generateOpenApi } from '../scripts/openapi.ts';

describe('OpenAPI document', () => {
  it('the checked-in spec/openapi.json equals the one generated from the routes', async () => {
    const generated = await generateOpenApi();
    expect(readFileSync(OPENAPI_PATH, 'utf8'), 'run: node --import tsx packages/relay/scripts/openapi.ts').toBe(generated);
  });

  it('documents every route with a summary and its error responses', async () => {
    const doc = JSON.parse(await generateOpenApi()) as {
      paths: Record<string, Record<string, { summary?: string; security?: unknown[]; responses: Record<string, unknown> }>>;
    };
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        expect(op.summary, `${method} ${path}`).toBeTruthy();
        // Signed routes can answer 401 (the websocket authenticates inside the socket).
        if (op.security === undefined) expect(Object.keys(op.responses), `${method} ${path}`).toContain('401');
      }
    }
  });
});
