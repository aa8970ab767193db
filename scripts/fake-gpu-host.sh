#!/usr/bin/env bash
# Lay out a fake NVIDIA GPU host for demos, the same shape as the Rust test
# support in tests/support/fake_gpu.rs:
#   ROOT/nvml/libnvidia-ml.so.1 + fake-nvml.conf   (tests/support/fake_nvml.c, as
#                                                    libnvidia-ml.so.DRIVER_VERSION)
#   ROOT/dev-root/dev/nvidia*                       (char devices as root, else /dev/null links)
#   ROOT/dev-root/dev/char/195:N                    (the links NVIDIA's udev rule makes)
#   ROOT/dev-root/proc/driver/nvidia/version        (the kernel module's version; MODULE_VERSION)
#   ROOT/dev-root/proc/driver/nvidia/gpus/*/information (each GPU's UUID and minor)
#   ROOT/dev-root/proc/devices                      (character majors: nvidia-uvm's)
#   ROOT/driver-root/...                            (driver libs, ld.so.cache, binaries; an
#                                                    nvidia-smi that fails while
#                                                    /run/fake-nvidia-smi-fails exists)
#   ROOT/cdi/nvidia.yaml                            (a CDI spec naming the GPUs)
# and print the flags to hand to `launch`.
#
# Usage: scripts/fake-gpu-host.sh ROOT [GPU_COUNT] [DRIVER_VERSION]
# MODULE_VERSION=X in the environment: the kernel module's version differs
# from the libraries' (a driver upgraded without a reboot).
# Needs gcc, mknod or ln, ldconfig (and unshare when not root).
set -euo pipefail

usage() {
    echo "usage: $0 ROOT [GPU_COUNT] [DRIVER_VERSION]" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 3 ]] || usage
root=$1
gpu_count=${2:-4}
driver_version=${3:-550.54.15}
stale_version=470.82.01
[[ $gpu_count =~ ^[0-9]+$ && $gpu_count -le 16 ]] || { echo "GPU_COUNT must be 0..16" >&2; exit 2; }

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
source_file=$script_dir/../tests/support/fake_nvml.c
[[ -f $source_file ]] || { echo "cannot find $source_file" >&2; exit 1; }

ldconfig_bin=ldconfig
for candidate in /sbin/ldconfig /usr/sbin/ldconfig; do
    if [[ -x $candidate ]]; then ldconfig_bin=$candidate; break; fi
done

is_root=false
uid=$(id -u)
[[ $uid -eq 0 ]] && is_root=true

mkdir -p "$root"
root=$(cd -- "$root" && pwd)
nvml_dir=$root/nvml
dev_dir=$root/dev-root/dev
driver_root=$root/driver-root
lib_dir=$driver_root/usr/lib/x86_64-linux-gnu
if [[ -e $nvml_dir || -e $root/dev-root || -e $driver_root ]]; then
    echo "$root already holds a fake host; remove it first" >&2
    exit 1
fi
mkdir -p "$nvml_dir" "$dev_dir" "$dev_dir/char" "$lib_dir" "$driver_root/etc" "$driver_root/usr/bin" \
    "$driver_root/run/nvidia-persistenced" "$root/dev-root/proc/driver/nvidia" "$root/cdi"

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

# --- NVML ------------------------------------------------------------------
# Named as the driver names it, so its version shows through the link.
gcc -shared -fPIC -O1 -o "$nvml_dir/libnvidia-ml.so.$driver_version" "$source_file" -ldl
ln -s "libnvidia-ml.so.$driver_version" "$nvml_dir/libnvidia-ml.so.1"

buses=(18 2A 3A 5D 9A AB BA DB)
{
    echo "# written by scripts/fake-gpu-host.sh"
    echo "driver $driver_version"
    echo "cuda 12040"
    for ((i = 0; i < gpu_count; i++)); do
        if ((i < 8)); then bus=${buses[i]}; else printf -v bus '%02X' $((0x10 + i)); fi
        # Minor = index here, like an ordinary box.
        printf 'gpu index=%d uuid=GPU-%08x-0000-4000-8000-%012x minor=%d name=NVIDIA_H100_80GB_HBM3 bus=00000000:%s:00.0 mem_total=%d mem_used=%d util_gpu=0 util_mem=0 mig=0\n' \
            "$i" $((0x5eed0000 + i)) "$i" "$i" "$bus" $((80 << 30)) $((1 << 20))
    done
} >"$nvml_dir/fake-nvml.conf"

# --- device nodes ----------------------------------------------------------
make_node() { # name major minor
    local path=$dev_dir/$1
    if $is_root && mknod -m 666 "$path" c "$2" "$3" 2>/dev/null; then
        return
    fi
    ln -s /dev/null "$path"
}
for ((i = 0; i < gpu_count; i++)); do
    make_node "nvidia$i" 195 "$i"
done
make_node nvidiactl 195 255
make_node nvidia-modeset 195 254
make_node nvidia-uvm 510 0
make_node nvidia-uvm-tools 510 1
for ((i = 0; i < gpu_count; i++)); do
    ln -s "../nvidia$i" "$dev_dir/char/195:$i"
done
ln -s ../nvidiactl "$dev_dir/char/195:255"

# --- /proc -------------------------------------------------------------------
printf 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n' \
    "${MODULE_VERSION:-$driver_version}" >"$root/dev-root/proc/driver/nvidia/version"
# Each GPU as the kernel module shows it (its UUID and minor), by bus id.
for ((i = 0; i < gpu_count; i++)); do
    if ((i < 8)); then bus=${buses[i]}; else printf -v bus '%02X' $((0x10 + i)); fi
    bus=$(printf '0000:%s:00.0' "${bus,,}")
    mkdir -p "$root/dev-root/proc/driver/nvidia/gpus/$bus"
    printf 'Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 0\nGPU UUID: \t GPU-%08x-0000-4000-8000-%012x\nVideo BIOS: \t 96.00.74.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t %s\nDevice Minor: \t %d\nGPU Excluded:\t No\n' \
        $((0x5eed0000 + i)) "$i" "$bus" "$i" >"$root/dev-root/proc/driver/nvidia/gpus/$bus/information"
done
printf 'Character devices:\n  1 mem\n195 nvidia-frontend\n510 nvidia-uvm\n\nBlock devices:\n  7 loop\n' \
    >"$root/dev-root/proc/devices"

# --- CDI ---------------------------------------------------------------------
{
    printf -- '---\ncdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n'
    for ((i = 0; i < gpu_count; i++)); do
        for name in "$i" "$(printf 'GPU-%08x-0000-4000-8000-%012x' $((0x5eed0000 + i)) "$i")"; do
            printf -- '- name: "%s"\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia%d\n' "$name" "$i"
        done
    done
    printf 'containerEdits:\n  deviceNodes:\n  - path: /dev/nvidiactl\n'
} >"$root/cdi/nvidia.yaml"

# --- driver root -----------------------------------------------------------
echo /usr/lib/x86_64-linux-gnu >"$driver_root/etc/ld.so.conf"

stub_lib() { # soname output
    printf 'const char fake_nvidia_driver_stub[] = "%s";\n' "$1" >"$work/stub.c"
    gcc -shared -fPIC -O1 "-Wl,-soname,$1" -o "$2" "$work/stub.c"
}
libs=(
    cuda:libcuda.so.1
    nvidia-ml:libnvidia-ml.so.1
    nvidia-ptxjitcompiler:libnvidia-ptxjitcompiler.so.1
    nvidia-nvvm:libnvidia-nvvm.so.4
    nvidia-cfg:libnvidia-cfg.so.1
    nvidia-encode:libnvidia-encode.so.1
    nvcuvid:libnvcuvid.so.1
    nvidia-opticalflow:libnvidia-opticalflow.so.1
    nvidia-glcore:libnvidia-glcore.so.1
    GLX_nvidia:libGLX_nvidia.so.0
    EGL_nvidia:libEGL_nvidia.so.0
    nvidia-eglcore:libnvidia-eglcore.so.1
    nvidia-allocator:libnvidia-allocator.so.1
)
for entry in "${libs[@]}"; do
    stub_lib "${entry#*:}" "$lib_dir/lib${entry%%:*}.so.$driver_version"
done
# A leftover from an older driver, as real hosts often have.
if [[ $driver_version != "$stale_version" ]]; then
    stub_lib libcuda.so.1 "$lib_dir/libcuda.so.$stale_version"
fi

# ldconfig -r chroots: as non-root, a user namespace grants that.
if $is_root; then
    "$ldconfig_bin" -r "$driver_root"
else
    unshare --map-root-user -- "$ldconfig_bin" -r "$driver_root"
fi
# ldconfig links the soname to the highest version; the current driver must
# own it even when it sorts below the stale one.
ln -sfn "libcuda.so.$driver_version" "$lib_dir/libcuda.so.1"

for bin in nvidia-debugdump nvidia-persistenced nvidia-cuda-mps-control nvidia-cuda-mps-server; do
    printf '#!/bin/sh\necho "fake %s"\n' "$bin" >"$driver_root/usr/bin/$bin"
    chmod 755 "$driver_root/usr/bin/$bin"
done
# nvidia-smi: lists the GPUs; fails as NVML does in a container whose GPUs a
# daemon-reload took while /run/fake-nvidia-smi-fails exists where it runs,
# and hangs (30 s) while /run/fake-nvidia-smi-hangs does.
{
    printf '#!/bin/sh\nif [ -e /run/fake-nvidia-smi-hangs ]; then\n  sleep 30\nfi\nif [ -e /run/fake-nvidia-smi-fails ]; then\n  echo "Failed to initialize NVML: Unknown Error"\n  exit 255\nfi\n'
    printf 'if [ "$1" = -L ]; then\n'
    for ((i = 0; i < gpu_count; i++)); do
        printf "  echo 'GPU %d: NVIDIA H100 80GB HBM3 (UUID: GPU-%08x-0000-4000-8000-%012x)'\n" "$i" $((0x5eed0000 + i)) "$i"
    done
    printf '  exit 0\nfi\necho "fake nvidia-smi"\n'
} >"$driver_root/usr/bin/nvidia-smi"
chmod 755 "$driver_root/usr/bin/nvidia-smi"
: >"$driver_root/run/nvidia-persistenced/socket"

# %q keeps the line pasteable even if ROOT has spaces.
printf -- '--nvml-lib %q --dev-root %q --driver-root %q --cdi-spec-dir %q\n' \
    "$nvml_dir/libnvidia-ml.so.1" "$root/dev-root" "$driver_root" "$root/cdi"
