/**
 * The embedded config used when no --config is given: a few demo routes so a newcomer sees the gateway
 * answer at once (`npm start`, then `curl localhost:8080/hello`).
 */
export const defaultConfig = {
  server: { host: '127.0.0.1', port: 8080 },
  admin: { host: '127.0.0.1', port: 9901 },
  routes: [
    {
      name: 'root',
      path: '/',
      methods: ['GET'],
      response: { status: 200, body: { gateway: 'ts-gateway', try: ['/hello', '/ping', '/echo/anything?x=1', '/users/42'] } },
    },
    { name: 'ping', path: '/ping', methods: ['GET'], response: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'pong' } },
    { name: 'hello', path: '/hello', methods: ['GET'], response: { status: 200, body: { message: 'Hello from ts-gateway' } } },
    { name: 'user', path: '/users/:id(\\d+)', methods: ['GET', 'PUT', 'DELETE'], handler: 'echo' },
    { name: 'echo', path: '/echo/*', methods: ['*'], handler: 'echo' },
  ],
};
