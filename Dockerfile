# syntax=docker/dockerfile:1
# Two stages: build with the Debian 12 toolchain and -dev packages, then run on debian:12-slim
# with only the shared libraries the binary links (tests/ops/deploy_test.py checks that list
# against `ldd`).
#
# The container listens on every interface, so it needs credentials (protected mode refuses to
# start without them): by default an API key file mounted at /etc/userapi/api-keys.json,
#
#   docker build -t userapi .
#   docker run --rm --entrypoint /usr/bin/userapi userapi new-api-key app users:read users:write > key.txt
#   printf '{"keys": [%s]}\n' "$(sed -n 2p key.txt)" > api-keys.json   # line 1 of key.txt is the key
#   docker run --rm -p 8080:8080 --ulimit nofile=16384:16384 -v userapi-data:/var/lib/userapi \
#       -v "$PWD/api-keys.json:/etc/userapi/api-keys.json:ro" userapi
#
# or a JWK Set instead of the default arguments (SIGHUP rereads either file):
#
#   docker run ... userapi --jwt-jwks https://issuer.example/.well-known/jwks.json \
#       --jwt-issuer https://issuer.example --jwt-audience userapi

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config libboost1.81-dev nlohmann-json3-dev libspdlog-dev libsqlite3-dev \
      libpq-dev libhiredis-dev libssl-dev librhonabwy-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake ./cmake
COPY include ./include
COPY src ./src
COPY config ./config
COPY deploy ./deploy
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DUSERAPI_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr \
 && cmake --build build \
 && DESTDIR=/staging cmake --install build

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libspdlog1.10 libfmt9 libsqlite3-0 libpq5 libhiredis0.14 \
      libssl3 librhonabwy1.1 libcurl4 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/userapi --shell /usr/sbin/nologin userapi \
 && install -d -o userapi -g userapi -m 0700 /var/lib/userapi
COPY --from=build /staging/usr/bin/userapi /usr/bin/userapi
COPY --from=build /staging/etc/userapi/userapi.json /etc/userapi/userapi.json
USER userapi
VOLUME /var/lib/userapi
EXPOSE 8080
# SIGTERM drains: requests in flight finish, then the process exits 0.
STOPSIGNAL SIGTERM
# Inside a container the server must listen on every interface for -p to reach it.
ENTRYPOINT ["/usr/bin/userapi", "--config", "/etc/userapi/userapi.json", "--address", "0.0.0.0", "--data", "/var/lib/userapi/userapi.db"]
# The credentials: replace these arguments to use a JWK Set, or to name another key file.
CMD ["--api-keys", "/etc/userapi/api-keys.json"]
