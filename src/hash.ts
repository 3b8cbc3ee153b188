const encoder = new TextEncoder()

function hex(buffer: ArrayBuffer): string {
  let text = ''
  for (const byte of new Uint8Array(buffer)) text += byte.toString(16).padStart(2, '0')
  return text
}

/** SHA-256 of a string (UTF-8), as lowercase hex. */
export async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', encoder.encode(text)))
}

/**
 * A list of texts as one string that no other list gives: each text behind its length (in UTF-16
 * code units) and a colon, `5:first3:two`. Nothing is escaped or scanned, as JSON would be: the
 * texts are only joined (V8 copies them once, when the encoder reads the string). A text with a
 * lone surrogate, which UTF-8 cannot hold (the encoder would write U+FFFD for it, as for a real
 * U+FFFD), goes as its JSON string after `!` instead: `8!"\ud800"`.
 */
function framedList(texts: readonly string[]): string {
  let framed = ''
  for (const text of texts) {
    if (text.isWellFormed()) framed += `${text.length}:${text}`
    else {
      const escaped = JSON.stringify(text)
      framed += `${escaped.length}!${escaped}`
    }
  }
  return framed
}

const listDigests = new WeakMap<readonly string[], Promise<string>>()

/**
 * SHA-256 of a list of texts (UTF-8 of each text behind its length and a colon, in order),
 * computed once per list: the verdict cache's keys (one per check) and the decision log's
 * `contextHash` share it, so a request's documents are encoded and hashed once however many use
 * them.
 */
export function listDigest(texts: readonly string[]): Promise<string> {
  let digest = listDigests.get(texts)
  if (!digest) {
    digest = sha256Hex(framedList(texts))
    listDigests.set(texts, digest)
  }
  return digest
}

/** An HMAC-SHA256 key from a secret. Make it once and keep it: importing costs more than signing. */
export function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  )
}

/** HMAC-SHA256 of a string (UTF-8) under `key`, as lowercase hex. */
export async function hmacHex(key: CryptoKey, text: string): Promise<string> {
  return hex(await crypto.subtle.sign('HMAC', key, encoder.encode(text)))
}

/** Whether two strings are equal, in time that depends only on their length. */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let difference = 0
  for (let index = 0; index < a.length; index++)
    difference |= a.charCodeAt(index) ^ b.charCodeAt(index)
  return difference === 0
}
