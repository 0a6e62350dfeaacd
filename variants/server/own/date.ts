/**
 * The `Date` field line of every answer (RFC 9110 §6.6.1), formatted at most once a second. The cache is
 * cleared by an unref'd timer at the next second boundary, so an idle process keeps no timer alive and a busy
 * one formats the date once a second instead of once per response (node:http does the same, utcDate()).
 */
let line = '';
let timer: NodeJS.Timeout | null = null;

function expire(): void {
  line = '';
  timer = null;
}

/** `Date: <IMF-fixdate>\r\n` */
export function dateLine(): string {
  if (line !== '') return line;
  const now = Date.now();
  line = `Date: ${new Date(now).toUTCString()}\r\n`;
  if (timer === null) {
    timer = setTimeout(expire, 1000 - (now % 1000));
    timer.unref();
  }
  return line;
}
