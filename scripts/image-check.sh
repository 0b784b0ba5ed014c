#!/bin/sh
# Runs the image built by scripts/image.sh: --version, the user it runs
# as, that it has no shell, and the whole demo (three D-TAs, enrollment,
# the proxy pair, refusals) inside one container on its own loopback, as
# the unprivileged user. IMAGE_RUN_FLAGS adds flags to every run (e.g.
# "--runtime runc" on a host whose default runtime does not work).
set -eu
engine=${CONTAINER_ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}
tag=${IMAGE_TAG:-milagro/mtls:local}
run() { $engine ${IMAGE_GLOBAL_FLAGS:-} run --rm ${IMAGE_RUN_FLAGS:-} "$@"; }
fail() { echo "image-check: $*" >&2; exit 1; }

v=$(run "$tag" --version) || fail "--version failed"
echo "$v"
echo "$v" | grep -q "$(git rev-parse --short HEAD)" || fail "--version does not name revision $(git rev-parse --short HEAD)"
user=$($engine ${IMAGE_GLOBAL_FLAGS:-} image inspect --format '{{.Config.User}}' "$tag")
[ "$user" = "65532:65532" ] || fail "image user is '$user', want 65532:65532"
if run --entrypoint /bin/sh "$tag" -c true >/dev/null 2>&1; then fail "the image has a shell"; fi
run --network none --tmpfs /tmp:mode=1777 "$tag" demo > /tmp/image-demo.log 2>&1 || { cat /tmp/image-demo.log; fail "demo in the container failed"; }
tail -n 3 /tmp/image-demo.log
echo "image-check: ok ($tag: --version, user 65532, no shell, demo passed in the container)"
