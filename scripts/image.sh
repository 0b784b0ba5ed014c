#!/bin/sh
# Builds the container image milagro/mtls:local with docker or podman.
# With registry access, deploy/Dockerfile builds inside the golang image;
# without (IMAGE_OFFLINE=1, or when the base images cannot be pulled),
# deploy/Dockerfile.local packages a static binary built here.
set -eu
cd "$(dirname "$0")/.."
engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
	for e in podman docker; do
		if command -v "$e" >/dev/null 2>&1 && "$e" info >/dev/null 2>&1; then engine=$e; break; fi
	done
fi
if [ -z "$engine" ]; then
	echo "image: no working container engine (docker or podman); install one (apt-get install podman)" >&2
	exit 1
fi
tag=${IMAGE_TAG:-milagro/mtls:local}
version=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "${IMAGE_OFFLINE:-0}" != 1 ] && $engine build -f deploy/Dockerfile \
	--build-arg VERSION="$version" --build-arg REVISION="$revision" -t "$tag" . ; then
	echo "image: built $tag from deploy/Dockerfile"
	exit 0
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
	-ldflags "-s -w -X main.version=$version -X main.revision=$revision" -o "$ctx/mtls" ./cmd/mtls
echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$ctx/passwd"
echo 'nonroot:x:65532:' > "$ctx/group"
$engine build -f deploy/Dockerfile.local -t "$tag" "$ctx"
echo "image: built $tag from deploy/Dockerfile.local (static binary built here)"
