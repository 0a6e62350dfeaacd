# syntax=docker/dockerfile:1
# ts-gateway image: `docker build -t ts-gateway:0.1.0 .` (see docs/deploy.md). The runtime stage is what
# test/install/docker.test.ts replays on the host (its COPY sources, its npm ci, its ENTRYPOINT + CMD), so keep
# its RUN steps to `npm ci`: the test fails on a step it does not know how to replay.
ARG NODE_IMAGE=node:20.20-bookworm-slim

# Build: every dependency (TypeScript, the type packages), then `npm run build` → dist/.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY core ./core
COPY variants ./variants
COPY scripts ./scripts
COPY scenarios ./scenarios
RUN npm run build

# Runtime: production dependencies and the built gateway only (the same set as the README's production install).
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# The npm cache stays in the build cache, not in the image.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /src/dist/core ./dist/core
COPY --from=build /src/dist/variants ./dist/variants
# A default config so that `docker run` works; Kubernetes mounts its ConfigMap over this folder.
COPY deploy/kubernetes/gateway.json /etc/ts-gateway/gateway.json
# The `node` user of the official image, by number so that runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 9901
# Exec form: node is PID 1 and receives SIGTERM itself; the gateway installs SIGTERM/SIGINT handlers and drains.
# (`docker run --init` or tini adds a reaper and makes a signal during startup, before the handlers, fatal.)
ENTRYPOINT ["node", "dist/core/cli.js"]
CMD ["--config", "/etc/ts-gateway/gateway.json"]
