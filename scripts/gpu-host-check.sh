#!/usr/bin/env bash
# Checks launch's view of a real NVIDIA GPU host against the driver's own tools:
#   1. `launch gpus --json` against `nvidia-smi --query-gpu=...`: the same GPUs,
#      with the same index, UUID, name, memory total and PCI bus id, and the
#      same driver version;
#   2. each GPU's minor number (from launch) against the /dev/nvidia<minor>
#      character devices (major 195);
#   3. `launch render` of a devices-mode profile for GPU 0: its device node, and
#      libcuda / libnvidia-ml mounts of the running driver version;
#   4. `launch doctor --json` against the driver's own answers: the kernel
#      module (/proc/driver/nvidia/version) against nvidia-smi's driver
#      version, persistence mode against nvidia-smi's, and the nvidia-uvm
#      major against /proc/devices and /dev/nvidia-uvm. Its text is printed;
#   5. the kernel's view a no-op `launch up` reads instead of NVML: nvidia-smi
#      numbers GPUs in PCI bus order, doctor's kernel-view, and what NVML's
#      start costs (`launch gpus` against `launch check`).
# Prints one PASS or FAIL line per check and exits 1 when any check fails.
# Needs bash, nvidia-smi, and python3 or jq; not Docker.
#
# Usage: scripts/gpu-host-check.sh [PATH_TO_LAUNCH]
#   The binary is $1, else $LAUNCH, else built with `cargo build --release`.
#   LAUNCH_NVML_LIB, LAUNCH_DEV_ROOT and LAUNCH_DRIVER_ROOT are passed on to
#   launch (and LAUNCH_DEV_ROOT is where the device nodes are checked).
#   GPU_CHECK_JSON_TOOL=jq uses jq even where python3 is present.
set -euo pipefail

die() {
    echo "gpu-host-check: $*" >&2
    exit 2
}

failures=0
pass() { echo "PASS: $*"; }
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
launch=${1:-${LAUNCH:-}}
if [[ -z $launch ]]; then
    command -v cargo >/dev/null || die "no launch binary given (\$1 or \$LAUNCH) and no cargo to build one"
    echo "building launch (cargo build --release)..." >&2
    (cd -- "$script_dir/.." && cargo build --release --quiet) || die "cargo build --release failed"
    launch=$script_dir/../target/release/launch
fi
[[ -x $launch ]] || die "$launch is not an executable launch binary"
command -v nvidia-smi >/dev/null || die "nvidia-smi is not on PATH: is this a host with an NVIDIA GPU and driver?"

if [[ -n ${GPU_CHECK_JSON_TOOL:-} ]]; then
    json_tool=$GPU_CHECK_JSON_TOOL # python3 or jq, to test the other one
    command -v "$json_tool" >/dev/null || die "$json_tool is not on PATH"
elif command -v python3 >/dev/null; then
    json_tool=python3
elif command -v jq >/dev/null; then
    json_tool=jq
else
    die "needs python3 or jq to read launch's JSON"
fi

dev_root=${LAUNCH_DEV_ROOT:-/}
dev_root=${dev_root%/}

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

# ---- JSON, flattened to tab-separated lines (null -> empty) -------------------

# index|uuid|name|memory_total (bytes)|pci_bus_id|minor: one line per GPU. Not
# tabs: `read` would merge the empty fields of unknown values.
gpus_tsv() {
    if [[ $json_tool == python3 ]]; then
        python3 - "$1" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
keys = ("index", "uuid", "name", "memory_total", "pci_bus_id", "minor")
for g in data["gpus"]:
    print("|".join("" if g.get(k) is None else str(g[k]) for k in keys))
PY
    else
        jq -r '.gpus[] | [.index, .uuid, .name, .memory_total, .pci_bus_id, .minor]
            | map(if . == null then "" else tostring end) | join("|")' "$1"
    fi
}

driver_version_of() {
    if [[ $json_tool == python3 ]]; then
        python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["driver_version"])' "$1"
    else
        jq -r '.driver_version' "$1"
    fi
}

# doctor's check NAME from its JSON: "status<TAB>message".
doctor_check() {
    if [[ $json_tool == python3 ]]; then
        python3 - "$1" "$2" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["checks"]:
    if c["name"] == sys.argv[2]:
        print("%s\t%s" % (c["status"], c["message"]))
PY
    else
        jq -r --arg n "$2" '.checks[] | select(.name == $n) | [.status, .message] | @tsv' "$1"
    fi
}

# "device<TAB>container path<TAB>host path" and "mount<TAB>target<TAB>source".
spec_tsv() {
    if [[ $json_tool == python3 ]]; then
        python3 - "$1" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))["spec"]
for d in spec.get("devices", []):
    print("device\t%s\t%s" % (d["container"], d["host"]))
for m in spec.get("mounts", []):
    print("mount\t%s\t%s" % (m["target"], m.get("source") or ""))
PY
    else
        jq -r '.spec | ((.devices // [])[] | ["device", .container, .host]),
            ((.mounts // [])[] | ["mount", .target, (.source // "")]) | @tsv' "$1"
    fi
}

# ---- normalising nvidia-smi's and NVML's forms ----------------------------------

trim() {
    local s=$1
    s=${s#"${s%%[![:space:]]*}"}
    s=${s%"${s##*[![:space:]]}"}
    printf '%s' "$s"
}

# 00000000:18:00.0, 0000:18:00.0 and 00000000:18:00.0 in any case -> 00000000:18:00.0
norm_bus() {
    local s=${1^^}
    if [[ $s =~ ^([0-9A-F]+):([0-9A-F]+):([0-9A-F]+)\.([0-9A-F]+)$ ]]; then
        printf '%08X:%02X:%02X.%X' "$((16#${BASH_REMATCH[1]}))" "$((16#${BASH_REMATCH[2]}))" \
            "$((16#${BASH_REMATCH[3]}))" "$((16#${BASH_REMATCH[4]}))"
    else
        printf '%s' "$s"
    fi
}

# "81559 MiB" -> 81559
mib_of() {
    local s
    s=$(trim "$1")
    s=${s% MiB}
    printf '%s' "$s"
}

# ---- 1. launch gpus against nvidia-smi -------------------------------------------

if ! "$launch" gpus --json >"$work/gpus.json" 2>"$work/gpus.err"; then
    cat "$work/gpus.err" >&2
    fail "launch gpus --json failed: $(tail -n 1 "$work/gpus.err")"
    echo "1 or more checks failed"
    exit 1
fi
nvidia-smi --query-gpu=index,uuid,name,memory.total,pci.bus_id --format=csv,noheader >"$work/smi.csv" ||
    die "nvidia-smi --query-gpu failed"
gpus_tsv "$work/gpus.json" >"$work/gpus.tsv"

declare -A l_uuid l_name l_mem l_bus l_minor
while IFS='|' read -r index uuid name mem bus minor; do
    l_uuid[$index]=$uuid
    l_name[$index]=$name
    l_mem[$index]=$mem
    l_bus[$index]=$bus
    l_minor[$index]=$minor
done <"$work/gpus.tsv"

smi_count=$(grep -c . "$work/smi.csv" || true)
launch_count=${#l_uuid[@]}
if [[ $smi_count -eq $launch_count && $smi_count -gt 0 ]]; then
    pass "GPU count: launch and nvidia-smi both see $smi_count"
else
    fail "GPU count: launch sees $launch_count, nvidia-smi sees $smi_count"
fi

while IFS=',' read -r s_index s_uuid s_name s_mem s_bus; do
    s_index=$(trim "$s_index")
    [[ -n $s_index ]] || continue
    if [[ -z ${l_uuid[$s_index]+set} ]]; then
        fail "GPU $s_index: nvidia-smi lists it, launch does not"
        continue
    fi
    s_uuid=$(trim "$s_uuid")
    if [[ ${s_uuid,,} == "${l_uuid[$s_index],,}" ]]; then
        pass "GPU $s_index uuid: $s_uuid"
    else
        fail "GPU $s_index uuid: nvidia-smi $s_uuid, launch ${l_uuid[$s_index]}"
    fi
    s_name=$(trim "$s_name")
    if [[ $s_name == "${l_name[$s_index]}" ]]; then
        pass "GPU $s_index name: $s_name"
    else
        fail "GPU $s_index name: nvidia-smi '$s_name', launch '${l_name[$s_index]}'"
    fi
    s_mib=$(mib_of "$s_mem")
    l_bytes=${l_mem[$s_index]}
    if [[ $s_mib =~ ^[0-9]+$ && $l_bytes =~ ^[0-9]+$ ]]; then
        l_mib=$((l_bytes / 1048576))
        diff=$((l_mib - s_mib))
        if ((diff >= -1 && diff <= 1)); then
            pass "GPU $s_index memory total: $s_mib MiB"
        else
            fail "GPU $s_index memory total: nvidia-smi $s_mib MiB, launch $l_mib MiB ($l_bytes bytes)"
        fi
    else
        fail "GPU $s_index memory total: nvidia-smi '$(trim "$s_mem")', launch '${l_bytes}'"
    fi
    s_bus=$(norm_bus "$(trim "$s_bus")")
    l_bus=$(norm_bus "${l_bus[$s_index]}")
    if [[ $s_bus == "$l_bus" ]]; then
        pass "GPU $s_index PCI bus id: $s_bus"
    else
        fail "GPU $s_index PCI bus id: nvidia-smi $s_bus, launch ${l_bus:-unknown}"
    fi
done <"$work/smi.csv"

driver=$(driver_version_of "$work/gpus.json")
smi_driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)
smi_driver=$(trim "$smi_driver")
if [[ $driver == "$smi_driver" ]]; then
    pass "driver version: $driver"
else
    fail "driver version: nvidia-smi $smi_driver, launch $driver"
fi

# ---- 2. device nodes --------------------------------------------------------------

echo "--- ls -l $dev_root/dev/nvidia*"
ls -l "$dev_root"/dev/nvidia* 2>&1 || true
for index in $(printf '%s\n' "${!l_minor[@]}" | sort -n); do
    minor=${l_minor[$index]}
    node=$dev_root/dev/nvidia$minor
    if [[ -z $minor ]]; then
        fail "GPU $index: launch reports no minor number"
    elif [[ ! -c $node ]]; then
        fail "GPU $index: minor $minor, but $node is not a character device"
    else
        read -r major_hex minor_hex < <(stat -L -c '%t %T' "$node")
        if [[ $((16#$major_hex)) -eq 195 && $((16#$minor_hex)) -eq $minor ]]; then
            pass "GPU $index: minor $minor is $node (195, $minor)"
        else
            fail "GPU $index: minor $minor, but $node is ($((16#$major_hex)), $((16#$minor_hex)))"
        fi
    fi
done

# ---- 3. a devices-mode spec for GPU 0 -------------------------------------------

profile=$work/gpu-host-check.toml
cat >"$profile" <<'TOML'
image = "nvidia/cuda:12.4.1-base-ubuntu22.04"
gpus = { devices = [0], mode = "devices" }
TOML
if "$launch" render --format json "$profile" >"$work/render.json" 2>"$work/render.err"; then
    pass "launch render of a devices-mode profile for GPU 0"
    spec_tsv "$work/render.json" >"$work/spec.tsv"

    minor0=${l_minor[0]:-}
    want_node="$dev_root/dev/nvidia$minor0"
    if [[ -n $minor0 ]] && grep -qxF "$(printf 'device\t/dev/nvidia%s\t%s' "$minor0" "$want_node")" "$work/spec.tsv"; then
        pass "spec: GPU 0's node /dev/nvidia$minor0 <- $want_node"
    else
        fail "spec: no device /dev/nvidia$minor0 from $want_node:"$'\n'"$(grep '^device' "$work/spec.tsv" || true)"
    fi
    if [[ -c $dev_root/dev/nvidiactl ]]; then
        if grep -q $'^device\t/dev/nvidiactl\t' "$work/spec.tsv"; then
            pass "spec: /dev/nvidiactl"
        else
            fail "spec: /dev/nvidiactl exists on the host but is not in the spec"
        fi
    fi

    echo "--- driver library mounts in the spec"
    grep -E $'^mount\t/usr/local/nvidia/lib64/lib(cuda|nvidia-ml)\\.' "$work/spec.tsv" |
        awk -F'\t' '{ print "  " $3 " -> " $2 }' || true
    for lib in libcuda libnvidia-ml; do
        for target in "$lib.so.1" "$lib.so.$driver"; do
            source=$(awk -F'\t' -v t="/usr/local/nvidia/lib64/$target" '$1 == "mount" && $2 == t { print $3 }' "$work/spec.tsv")
            if [[ -z $source ]]; then
                fail "spec: nothing mounted at /usr/local/nvidia/lib64/$target"
            elif [[ $(basename -- "$source") != "$lib.so.$driver" ]]; then
                fail "spec: /usr/local/nvidia/lib64/$target <- $source, not $lib.so.$driver of the running driver"
            elif [[ ! -f $source ]]; then
                fail "spec: /usr/local/nvidia/lib64/$target <- $source, which is not a file"
            else
                pass "spec: /usr/local/nvidia/lib64/$target <- $source"
            fi
        done
    done
else
    cat "$work/render.err" >&2
    fail "launch render of a devices-mode profile for GPU 0: $(grep -m1 '^error' "$work/render.err" || tail -n 1 "$work/render.err")"
fi

# ---- 4. launch doctor against the driver's own answers ---------------------------

echo "--- launch doctor"
"$launch" doctor 2>&1 || true
if "$launch" doctor --json >"$work/doctor.json" 2>"$work/doctor.err" || [[ -s $work/doctor.json ]]; then
    # The kernel module: /proc/driver/nvidia/version against nvidia-smi.
    proc_version=$dev_root/proc/driver/nvidia/version
    IFS=$'\t' read -r k_status k_message < <(doctor_check "$work/doctor.json" kernel-module)
    if [[ -r $proc_version ]]; then
        module=$(sed -n 's/^NVRM version:.*Kernel Module[^0-9]*\([0-9][0-9.]*\).*/\1/p' "$proc_version" | head -n 1)
        if [[ $module == "$smi_driver" && $k_status == ok ]] || [[ -n $module && $module != "$smi_driver" && $k_status == fail ]]; then
            pass "doctor kernel-module: $k_status (module $module, nvidia-smi $smi_driver)"
        else
            fail "doctor kernel-module: $k_status ($k_message), but the module is '$module' and nvidia-smi says $smi_driver"
        fi
    else
        fail "$proc_version is not readable (doctor says: $k_status: $k_message)"
    fi

    # Persistence mode: nvidia-smi's Disabled GPUs are the ones doctor names.
    off=$(nvidia-smi --query-gpu=index,persistence_mode --format=csv,noheader |
        awk -F', *' '$2 == "Disabled" { printf "%s%s", sep, $1; sep = ", " }')
    IFS=$'\t' read -r p_status p_message < <(doctor_check "$work/doctor.json" persistence-mode)
    if [[ -z $off && $p_status == ok ]] || [[ -n $off && $p_status == warn && $p_message == *"GPU(s) $off:"* ]]; then
        pass "doctor persistence-mode: $p_status (nvidia-smi: off on '${off:-none}')"
    else
        fail "doctor persistence-mode: $p_status ($p_message), but nvidia-smi has it off on '${off:-none}'"
    fi

    # nvidia-uvm: /proc/devices' major, and the node's when it exists.
    IFS=$'\t' read -r n_status n_message < <(doctor_check "$work/doctor.json" device-nodes)
    uvm_major=$(awk '/^Block devices:/ { exit } $2 == "nvidia-uvm" { print $1 }' "$dev_root/proc/devices" 2>/dev/null || true)
    if [[ -c $dev_root/dev/nvidia-uvm && -n $uvm_major ]]; then
        node_major=$((16#$(stat -L -c '%t' "$dev_root/dev/nvidia-uvm")))
        if [[ $node_major -eq $uvm_major && $n_status == ok && $n_message == *"nvidia-uvm major $uvm_major"* ]] ||
            [[ $node_major -ne $uvm_major && $n_status == fail ]]; then
            pass "doctor device-nodes: $n_status (nvidia-uvm major $uvm_major in /proc/devices, $node_major on the node)"
        else
            fail "doctor device-nodes: $n_status ($n_message); /proc/devices says nvidia-uvm is $uvm_major, the node $node_major"
        fi
    elif [[ ! -e $dev_root/dev/nvidia-uvm && $n_status == warn ]]; then
        pass "doctor device-nodes: warn (no /dev/nvidia-uvm yet)"
    else
        echo "doctor device-nodes: $n_status ($n_message); nvidia-uvm major in /proc/devices: '${uvm_major:-none}'"
    fi
else
    cat "$work/doctor.err" >&2
    fail "launch doctor --json printed nothing: $(tail -n 1 "$work/doctor.err")"
fi

# ---- 5. the kernel's view, which a no-op `launch up` reads instead of NVML -----
# NVML must number the GPUs in PCI bus order, as /proc/driver/nvidia/gpus
# lists them; doctor's kernel-view compares the two views itself.
echo "--- the kernel's view"
smi_order=$(nvidia-smi --query-gpu=index,pci.bus_id --format=csv,noheader | tr -d ' ')
bus_sorted=$(printf '%s\n' "$smi_order" | sort -t, -k2 | cut -d, -f1 | tr '\n' ' ')
index_order=$(printf '%s\n' "$smi_order" | cut -d, -f1 | tr '\n' ' ')
if [[ $bus_sorted == "$index_order" ]]; then
    pass "nvidia-smi numbers the GPUs in PCI bus order ($index_order)"
else
    fail "nvidia-smi's indices in bus order are '$bus_sorted', not '$index_order'"
fi
if [[ -s $work/doctor.json ]]; then
    IFS=$'\t' read -r v_status v_message < <(doctor_check "$work/doctor.json" kernel-view)
    if [[ $v_status == ok ]]; then
        pass "doctor kernel-view: ok ($v_message)"
    else
        # Not initialised since boot (persistence off) is a real case: say it.
        echo "doctor kernel-view: $v_status ($v_message)"
    fi
fi
# What NVML's start costs here: `launch gpus` loads NVML, `launch check` not.
time_ms() { # command...: the mean of 10 runs, in ms
    local start end
    start=$(date +%s%N)
    for _ in 1 2 3 4 5 6 7 8 9 10; do "$@" >/dev/null 2>&1 || true; done
    end=$(date +%s%N)
    echo $(((end - start) / 10000000))
}
echo "launch gpus (NVML): $(time_ms "$launch" gpus --json) ms; launch check (no NVML): $(time_ms "$launch" check "$profile") ms"

if ((failures > 0)); then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
