/**
 * The upstream stub's response body, shared by the stub and by the runner's answer check (which verifies that
 * every proxy in a proxy-mode scenario delivers these exact bytes).
 */
export function stubBody(bytes: number): Buffer {
  const head = '{"ok":true,"pad":"';
  const tailStr = '"}';
  const pad = Math.max(0, bytes - head.length - tailStr.length);
  return Buffer.from(head + 'x'.repeat(pad) + tailStr);
}
