#!/usr/bin/env bash
# Build the Docker image the Docker backend tests use, berth-python:latest (Debian
# bookworm minbase with python3, git and CA certificates), without any registry:
# debootstrap from the Debian mirror, then `docker import`.
#
# Fast when nothing changed: it does nothing if the image exists (pass --force to
# rebuild), and keeps the root filesystem as a tarball in the cache dir so a wiped
# Docker engine gets its image back in seconds.
#
# Environment: BERTH_TEST_IMAGE (berth-python:latest), BERTH_DEBIAN_SUITE (bookworm),
# BERTH_DEBIAN_MIRROR (http://deb.debian.org/debian), BERTH_IMAGE_CACHE
# (~/.cache/berth/images). Needs root (debootstrap chroots) and a reachable engine.
set -euo pipefail

image="${BERTH_TEST_IMAGE:-berth-python:latest}"
suite="${BERTH_DEBIAN_SUITE:-bookworm}"
mirror="${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${BERTH_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/images}"
force="${1:-}"

die() { echo "build-test-image: $*" >&2; exit 1; }

command -v docker >/dev/null || die "the docker CLI is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running?)"
if [ "$force" != "--force" ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "build-test-image: $image already exists (--force rebuilds it)"
    exit 0
fi

tarball="$cache/$suite-python-git.tar"
if [ "$force" = "--force" ] || [ ! -s "$tarball" ]; then
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    if ! command -v debootstrap >/dev/null; then
        command -v apt-get >/dev/null || die "install debootstrap first"
        apt-get install -y --no-install-recommends debootstrap >/dev/null \
            || { apt-get update >/dev/null && apt-get install -y --no-install-recommends debootstrap >/dev/null; }
    fi
    mkdir -p "$cache"
    root="$(mktemp -d)"
    trap 'rm -rf "$root"' EXIT
    echo "build-test-image: debootstrap $suite into $root"
    debootstrap --variant=minbase --include=python3,git,ca-certificates \
        "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
        || { tail -n 30 "$root.log" >&2; die "debootstrap failed (log: $root.log)"; }
    rm -f "$root.log"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi

echo "build-test-image: importing $tarball as $image"
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$image" >/dev/null
echo "build-test-image: built $image"
