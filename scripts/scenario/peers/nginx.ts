import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NginxOptions {
  port: number;
  upstreamPort: number;
  prefixes: string[];
  /** private directory for the config, pid, error log and temp paths (nginx writes nothing elsewhere) */
  dir: string;
  /** gRPC: HTTP/2 cleartext in front (h2c with prior knowledge), `grpc_pass` behind, upstream keepalive the same */
  grpc?: boolean;
}

/**
 * nginx with ONE worker process and a keep-alive upstream pool: the comparison point the issue sets (gateway
 * ≥ 0.8× nginx). Everything nginx would write outside `dir` is redirected into it so it runs unprivileged-safe,
 * in the foreground (`daemon off`), and leaves nothing behind. keepalive_requests are raised on both sides:
 * nginx's default (1000) recycles connections, Node servers never do, and reconnects are not what we measure.
 */
export function nginxConfig(o: NginxOptions): string {
  const d = (p: string) => join(o.dir, p);
  const locations = (o.prefixes.length > 0 ? o.prefixes.map((p) => `${p}/`) : ['/']).map((loc) =>
    o.grpc === true
      ? `    location ${loc} {
      grpc_pass grpc://stub;
    }`
      : `    location ${loc} {
      proxy_pass http://stub;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }`,
  );
  // nginx 1.22 (Debian 12) spells HTTP/2 as a listen flag; streams raised to the gateway's and the stub's 1000
  const listen = o.grpc === true ? `listen 127.0.0.1:${o.port} http2;\n    http2_max_concurrent_streams 1000;` : `listen 127.0.0.1:${o.port};`;
  // root's nginx would hand its worker to "nobody", which cannot use the temp dirs created here
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}daemon off;
master_process on;
worker_processes 1;
pid ${d('nginx.pid')};
error_log ${d('error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${d('client_body')};
  proxy_temp_path ${d('proxy')};
  fastcgi_temp_path ${d('fastcgi')};
  uwsgi_temp_path ${d('uwsgi')};
  scgi_temp_path ${d('scgi')};
  keepalive_timeout 65s;
  keepalive_requests 100000000;
  upstream stub {
    server 127.0.0.1:${o.upstreamPort};
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    ${listen}
${locations.join('\n')}
  }
}
`;
}

/** Writes the config; returns the nginx argv (prefix and error log before config parsing point into `dir` too). */
export function prepareNginx(o: NginxOptions): string[] {
  mkdirSync(o.dir, { recursive: true });
  const conf = join(o.dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(o));
  return ['-p', o.dir, '-e', join(o.dir, 'error.log'), '-c', conf];
}
