# lifeboat worker / CLI image.
#
#   docker build -t lifeboat .
#   docker run --rm lifeboat --help            # any `lifeboat` subcommand
#   docker run ... lifeboat                    # default: `lifeboat worker` (the Temporal worker)
#
# Both stages use the same Debian (glibc) base on purpose: @temporalio/core-bridge and @swc/core ship prebuilt
# glibc binaries selected per platform by npm, so building on Alpine/musl here and running elsewhere would break.
# SSH to the control-plane nodes goes through the ssh2 library, so no openssh-client is installed.
#
# The two images it starts from are build arguments: with no registry, build them on the machine
# (scripts/compose-images.sh) and pass their names, as docker-compose.local.yml does:
#   docker build --build-arg NODE_IMAGE=lifeboat-local/node:local --build-arg ETCD_IMAGE=lifeboat-local/etcd:local .
ARG NODE_IMAGE=node:24-bookworm-slim
ARG ETCD_IMAGE=gcr.io/etcd-development/etcd:v3.6.16

############################ etcd: etcdctl/etcdutl for direct mode ############################
# With etcd.direct in the config the worker takes snapshots itself; it needs etcd's own tools, taken from the
# project's release image (static Go binaries).
FROM ${ETCD_IMAGE} AS etcd

############################ build: compile TypeScript ############################
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Manifests first, so the dependency layer is cached until package.json / package-lock.json change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY . .
# tsc -p tsconfig.build.json -> dist/: the product only (src, workflows, activities; rootDir "." keeps the layout).
RUN npm run build

############################ runtime: production deps + compiled JS ############################
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# The worker streams snapshots through fixed part buffers; these keep the garbage of a fast stream from piling up
# (a small young generation, and explicit collections per uploaded part). See "Performance" in the README.
ENV NODE_OPTIONS="--max-semi-space-size=2 --expose-gc"
# glibc's malloc, where Buffers' memory lives: few arenas, and large blocks always mapped (so given back when freed)
# rather than the threshold drifting up and parking freed part buffers in the heap. The worker kept ~260 MiB after a
# 1 GiB backup without these, ~230 with them, at the same speed (bench:backup, bench:drill; README "Performance").
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
WORKDIR /app

# Production dependencies only, installed fresh rather than pruned from the build stage. The worker loads the
# workflow bundle made at build time (dist/workflow-bundle.js) and runs no webpack at start-up; webpack still comes
# along as a dependency of @temporalio/worker.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY --from=build /app/dist ./dist
# etcd's trimmed protos, loaded at run time by dist/src/etcd/grpc (src/etcd/grpc/proto.ts looks for them here).
COPY --from=build /app/src/etcd/grpc/proto ./src/etcd/grpc/proto
COPY --from=etcd /usr/local/bin/etcdctl /usr/local/bin/etcdutl /usr/local/bin/

# Files stay owned by root (read-only to the app); the process runs as the image's unprivileged `node` user
# (uid/gid 1000, home /home/node). Mount SSH keys at /home/node/.ssh and the config at /etc/lifeboat.
USER node

ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["worker"]
