/**
 * ML-KEM-768 for both backends: noble's, since Node 20's OpenSSL 3.0 has no
 * ML-KEM. One module so the two backends cannot drift apart here.
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import type { CryptoBackend } from './backend.ts';

export const mlkem768: Pick<CryptoBackend, 'mlkemKeygen' | 'mlkemEncapsulate' | 'mlkemDecapsulate'> = {
  mlkemKeygen(seed) {
    const { publicKey, secretKey } = ml_kem768.keygen(seed);
    return { publicKey, secretKey };
  },
  mlkemEncapsulate(pub, m) {
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(pub, m);
    return { ciphertext: cipherText, sharedSecret };
  },
  mlkemDecapsulate: (ct, sk) => ml_kem768.decapsulate(ct, sk),
};
