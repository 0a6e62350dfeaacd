/**
 * Picks the encoding for an Accept-Encoding value (RFC 9110 §12.5.3): the highest q among the ones we offer,
 * ties broken by our preference order; q=0 refuses; `*` covers encodings not named. null = send identity.
 */
export function negotiateEncoding(accept: string | undefined, offered: readonly string[]): string | null {
  if (accept === undefined || accept === '') return null;
  let best: string | null = null;
  let bestQ = 0;
  let bestRank = Infinity;
  let starQ = -1;
  const named = new Map<string, number>();
  for (const part of accept.split(',')) {
    const semi = part.indexOf(';');
    const token = (semi === -1 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (token === '') continue;
    let q = 1;
    if (semi !== -1) {
      const m = /(?:^|;)\s*q\s*=\s*([0-9.]+)/i.exec(part.slice(semi));
      if (m !== null) {
        q = Number(m[1]);
        if (!Number.isFinite(q) || q < 0 || q > 1) q = 0;
      }
    }
    if (token === '*') starQ = q;
    else named.set(token === 'x-gzip' ? 'gzip' : token, q);
  }
  for (let rank = 0; rank < offered.length; rank++) {
    const enc = offered[rank]!;
    const q = named.get(enc) ?? (starQ >= 0 ? starQ : 0);
    if (q <= 0) continue;
    if (q > bestQ || (q === bestQ && rank < bestRank)) {
      best = enc;
      bestQ = q;
      bestRank = rank;
    }
  }
  return best;
}
