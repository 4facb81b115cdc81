/**
 * Subject alternative names from Node's `subjectaltname` string
 * (`DNS:a.example, URI:spiffe://td/ns/a/sa/b`). Since CVE-2021-44532 Node
 * writes a value holding a comma, quote or the like as a JSON string
 * (`URI:"spiffe://x,y"`), so a value can never be split into two names.
 */
export interface SubjectAltName {
  type: string;
  value: string;
}

const ENTRY = /([A-Za-z][A-Za-z ]*):(?:"((?:[^"\\]|\\.)*)"|([^,]*))(?:, |$)/y;

export function parseSubjectAltNames(text: string | undefined): SubjectAltName[] {
  if (text === undefined || text === '') return [];
  const out: SubjectAltName[] = [];
  ENTRY.lastIndex = 0;
  while (ENTRY.lastIndex < text.length) {
    const start = ENTRY.lastIndex;
    const m = ENTRY.exec(text);
    if (!m || ENTRY.lastIndex === start) break;
    const value = m[2] !== undefined ? (JSON.parse(`"${m[2]}"`) as string) : m[3]!;
    out.push({ type: m[1]!, value });
  }
  return out;
}

/** The URI SANs of a certificate: where a SPIFFE ID lives. */
export function uriSans(subjectAltName: string | undefined): string[] {
  return parseSubjectAltNames(subjectAltName)
    .filter((n) => n.type === 'URI')
    .map((n) => n.value);
}
