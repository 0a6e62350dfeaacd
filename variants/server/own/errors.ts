/**
 * One error class for every way a request can fail to parse (undici style: the class says "the request bytes
 * are bad", the code says which rule was broken, the status says what the engine answers before it closes).
 */

/** The HTTP status the engine answers with for a parse error; the connection is closed afterwards. */
export type ParseErrorStatus = 400 | 413 | 414 | 431 | 501 | 505;

export type ParseErrorCode =
  | 'HPE_INVALID_METHOD'
  | 'HPE_UNKNOWN_METHOD'
  | 'HPE_INVALID_TARGET'
  | 'HPE_TARGET_FORM'
  | 'HPE_INVALID_VERSION'
  | 'HPE_UNSUPPORTED_VERSION'
  | 'HPE_INVALID_REQUEST_LINE'
  | 'HPE_INVALID_HEADER_TOKEN'
  | 'HPE_INVALID_HEADER_VALUE'
  | 'HPE_OBS_FOLD'
  | 'HPE_BARE_CR_OR_LF'
  | 'HPE_HEADER_OVERFLOW'
  | 'HPE_HEAD_TOO_LARGE'
  | 'HPE_URI_TOO_LONG'
  | 'HPE_INVALID_CONTENT_LENGTH'
  | 'HPE_DUPLICATE_CONTENT_LENGTH'
  | 'HPE_CONTENT_LENGTH_TOO_LARGE'
  | 'HPE_TE_WITH_CONTENT_LENGTH'
  | 'HPE_INVALID_TRANSFER_ENCODING'
  | 'HPE_UNSUPPORTED_TRANSFER_CODING'
  | 'HPE_MISSING_HOST'
  | 'HPE_DUPLICATE_HOST'
  | 'HPE_INVALID_CHUNK_SIZE'
  | 'HPE_CHUNK_SIZE_TOO_LARGE'
  | 'HPE_INVALID_CHUNK_EXTENSION'
  | 'HPE_CHUNK_LINE_TOO_LONG'
  | 'HPE_MISSING_CHUNK_CRLF'
  | 'HPE_INVALID_TRAILER'
  | 'HPE_CLOSED_CONNECTION'
  | 'HPE_INVALID_EOF_STATE';

export class HttpParserError extends Error {
  override readonly name = 'HttpParserError';
  constructor(
    readonly code: ParseErrorCode,
    message: string,
    /** what the engine answers (RFC 9110 §15.5 / §15.6) */
    readonly statusCode: ParseErrorStatus,
    /** byte offset in the connection's stream where the failing message began */
    readonly messageStart: number,
    /** byte offset in the connection's stream where the error was detected */
    readonly offset: number,
  ) {
    super(message);
  }
}
