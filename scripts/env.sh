# Sourced by the scripts: installs what the build needs and sets up the build environment.
# Safe to source repeatedly; it only installs what is missing.

# Installs the Debian packages named that are not installed yet.
cairn_install_packages() {
    local need=() package
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
    done
    [ ${#need[@]} -gt 0 ] || return 0
    echo "installing system packages: ${need[*]}" >&2
    local sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
}

# bindgen (librocksdb-sys) needs libclang; RocksDB itself comes from Debian, prebuilt.
cairn_install_packages libclang-dev librocksdb-dev

# Link Debian's RocksDB instead of compiling its C++ from source (~17 minutes on 2 cores).
export ROCKSDB_LIB_DIR="${ROCKSDB_LIB_DIR:-/usr/lib/$(gcc -dumpmachine)}"
# Build outside the work tree so that builds stay incremental when the tree is checked out anew.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
