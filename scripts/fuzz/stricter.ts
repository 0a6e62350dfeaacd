import { METHODS } from 'node:http';
import type { Message } from './engines.js';

/**
 * The machine-checkable list of where the own parser is stricter than llhttp on purpose (the list at the top
 * of ../parser.ts, same names). Each classifier looks at the input itself — never at the own parser's error
 * code — and says whether the failing request has the property its rule refuses. The differential check
 * accepts "ours refused, llhttp accepted" only when one of them recognises the request.
 */

export interface RejectRule {
  name: string;
  rfc: string;
  /** `request`: the bytes of the request the own parser refused, from its first byte to the end of input */
  applies(request: string, ctx: { maxHeaderSize: number; maxHeadBytes: number }): boolean;
}

/** A rule for a request both accept but whose keep-alive or upgrade flag differs (ours: false, llhttp: true). */
export interface FlagRule {
  name: string;
  rfc: string;
  /** the flag that differs */
  flag: 'keepAlive' | 'upgrade';
  applies(ours: Message, theirs: Message): boolean;
}

const requestLine = (req: string): string => {
  const m = /^[^\r\n]*/.exec(req);
  return m === null ? '' : m[0];
};
/** the head's field lines: up to the first empty line, or the end of input */
const fieldLines = (req: string): string[] => {
  const end = req.indexOf('\r\n\r\n');
  const head = end === -1 ? req : req.slice(0, end);
  return head.split('\r\n').slice(1);
};
const fieldValues = (req: string, name: string): string[] =>
  fieldLines(req)
    .filter((l) => l.slice(0, name.length + 1).toLowerCase() === `${name}:`)
    .map((l) => l.slice(name.length + 1).replace(/^[ \t]+|[ \t]+$/g, ''));
const listElements = (values: string[]): string[] =>
  values
    .join(',')
    .split(',')
    .map((e) => e.replace(/^[ \t]+|[ \t]+$/g, ''))
    .filter((e) => e !== '');
/** lines after the head (chunk-size lines and trailers live there) */
const bodyLines = (req: string): string[] => {
  const end = req.indexOf('\r\n\r\n');
  return end === -1 ? [] : req.slice(end + 4).split('\r\n');
};

const AUTHORITY_FORM = /^(?:[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[[0-9A-Fa-f:.]+\]):[0-9]+$/;

export const REJECT_RULES: readonly RejectRule[] = [
  {
    name: 'multipleSpaces',
    rfc: 'RFC 9112 §3',
    applies: (req) => requestLine(req).includes('  '),
  },
  {
    name: 'targetForm',
    rfc: 'RFC 9112 §3.2.3, §3.2.4; RFC 9110 §4.2.1',
    applies: (req) => {
      const [method, target] = requestLine(req).split(' ');
      if (method === undefined || target === undefined) return false;
      if (method === 'CONNECT') return !AUTHORITY_FORM.test(target);
      if (target.startsWith('*')) return target !== '*' || method !== 'OPTIONS';
      return /^[A-Za-z]+:\/\/(?:[/?]|$)/.test(target);
    },
  },
  {
    name: 'versionNotHttp1',
    rfc: 'RFC 9110 §15.6.6',
    applies: (req) => {
      const line = requestLine(req);
      // HTTP/0.9 style: no version at all
      if (/^[^ ]+ [^ ]+$/.test(line)) return true;
      return / HTTP\/\d\.\d$/.test(line) && !/ HTTP\/1\.[01]$/.test(line);
    },
  },
  {
    name: 'hostMissing',
    rfc: 'RFC 9112 §3.2',
    applies: (req) => requestLine(req).endsWith(' HTTP/1.1') && fieldValues(req, 'host').length === 0,
  },
  {
    name: 'hostRepeated',
    rfc: 'RFC 9112 §3.2',
    applies: (req) => fieldValues(req, 'host').length > 1,
  },
  {
    name: 'emptyTransferEncoding',
    rfc: 'RFC 9112 §6.1',
    applies: (req) => {
      const te = fieldValues(req, 'transfer-encoding');
      return te.length > 0 && listElements(te).length === 0;
    },
  },
  {
    name: 'transferCodingNotChunked',
    rfc: 'RFC 9112 §6.1 (501)',
    applies: (req) => listElements(fieldValues(req, 'transfer-encoding')).some((c) => c.toLowerCase() !== 'chunked'),
  },
  {
    name: 'upgradeTransferEncoding',
    rfc: 'RFC 9110 §9.3.6, RFC 9112 §6.3',
    applies: (req) => {
      if (fieldValues(req, 'transfer-encoding').length === 0) return false;
      if (requestLine(req).startsWith('CONNECT ')) return true;
      const connection = listElements(fieldValues(req, 'connection')).map((e) => e.toLowerCase());
      return connection.includes('upgrade') && fieldValues(req, 'upgrade').some((v) => v !== '');
    },
  },
  {
    name: 'contentLengthAboveSafeInteger',
    rfc: 'RFC 9112 §6.2 (413)',
    applies: (req) => fieldValues(req, 'content-length').some((v) => /^\d+$/.test(v) && Number(v) > Number.MAX_SAFE_INTEGER),
  },
  {
    name: 'chunkSizeAbove2e48',
    rfc: 'RFC 9112 §7.1',
    applies: (req) => bodyLines(req).some((l) => /^0*[0-9a-fA-F]{13,}(?:;|$)/.test(l)),
  },
  {
    name: 'chunkExtensionEmpty',
    rfc: 'RFC 9112 §7.1.1',
    applies: (req) => bodyLines(req).some((l) => /^[0-9a-fA-F]+;/.test(l) && /;(?:[=;]|$)|=(?:;|$)/.test(l)),
  },
  {
    name: 'chunkLineTooLong',
    rfc: 'RFC 9112 §7.1.1',
    applies: (req) => bodyLines(req).some((l) => l.length > 4096 && /^[0-9a-fA-F]+;/.test(l)),
  },
  {
    name: 'headTooLarge',
    rfc: 'RFC 9112 §2.3 / RFC 6585 §5 (431)',
    applies: (req, ctx) => {
      const blocks = req.split('\r\n\r\n');
      if (blocks[0]!.length > ctx.maxHeadBytes) return true;
      // a trailer section: what follows the last-chunk line in a later block
      return blocks.slice(1).some((block) => {
        const m = /(?:^|\r\n)0+(?:;[^\r\n]*)?\r\n/.exec(block);
        return m !== null && block.length - m.index - m[0].length > ctx.maxHeadBytes;
      });
    },
  },
];

const connectionElements = (m: Message): string[] => {
  const values: string[] = [];
  for (let i = 0; i < m.rawHeaders.length; i += 2) if (m.rawHeaders[i]!.toLowerCase() === 'connection') values.push(m.rawHeaders[i + 1]!);
  return listElements(values).map((e) => e.toLowerCase());
};

export const FLAG_RULES: readonly FlagRule[] = [
  {
    name: 'upgradeIgnoredInHttp10',
    rfc: 'RFC 9110 §7.8',
    flag: 'upgrade',
    applies: (ours, theirs) => ours.version === '1.0' && ours.method !== 'CONNECT' && !ours.upgrade && theirs.upgrade,
  },
  {
    name: 'http10TransferEncodingCloses',
    rfc: 'RFC 9112 §6.1',
    flag: 'keepAlive',
    applies: (ours, theirs) =>
      ours.version === '1.0' && !ours.keepAlive && theirs.keepAlive && ours.rawHeaders.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'transfer-encoding'),
  },
  {
    name: 'closeBeatsKeepAlive',
    rfc: 'RFC 9112 §9.6',
    flag: 'keepAlive',
    applies: (ours, theirs) => ours.version === '1.0' && !ours.keepAlive && theirs.keepAlive && connectionElements(ours).includes('close'),
  },
];

/**
 * Where both engines refuse the same request but with a status of another class, by design (the engine-level
 * check, engine-differential.ts, compares status classes; the parser-level check only acceptance).
 */
export interface StatusRule {
  name: string;
  rfc: string;
  /** the status the own engine answers */
  status: number;
  /** `request`: the bytes of the request both refused, from its first byte to the end of input */
  applies(request: string): boolean;
}

/** a method token, as the request line starts (RFC 9110 §5.6.2 tchar) */
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?= )/;

export const STATUS_RULES: readonly StatusRule[] = [
  {
    // llhttp refuses a method it does not know as a parse error (400); the own parser answers 501
    name: 'methodNotImplemented',
    rfc: 'RFC 9110 §9.1, §15.6.2 (501)',
    status: 501,
    applies: (req) => {
      const m = METHOD_TOKEN.exec(req);
      return m !== null && !KNOWN_METHODS.has(m[0]);
    },
  },
  {
    // llhttp: 400 (HPE_INVALID_VERSION) for a version it cannot read; the own parser: 505 for any HTTP/x.y not 1.x
    name: 'versionNotSupported',
    rfc: 'RFC 9110 §15.6.6 (505)',
    status: 505,
    applies: (req) => {
      const line = requestLine(req);
      return / HTTP\/\d\.\d$/.test(line) && !/ HTTP\/1\.[01]$/.test(line);
    },
  },
  {
    // llhttp: 400 (HPE_INVALID_TRANSFER_ENCODING); the own parser: 501 for a coding it does not implement
    name: 'transferCodingNotImplemented',
    rfc: 'RFC 9112 §6.1 (501)',
    status: 501,
    applies: (req) => listElements(fieldValues(req, 'transfer-encoding')).some((c) => c.toLowerCase() !== 'chunked'),
  },
];

const KNOWN_METHODS = new Set(METHODS);
