/*
 * fake_nvml.c - a fake libnvidia-ml.so.1 for tests that have no GPU.
 *
 * Build:  gcc -shared -fPIC -O1 -o libnvidia-ml.so.1 fake_nvml.c -ldl
 *         add -DOMIT_<functionName> to leave a symbol out entirely.
 *
 * At nvmlInit the library reads a config file: $FAKE_NVML_CONFIG if set,
 * else "fake-nvml.conf" next to the library file itself. One directive per
 * line, '#' starts a comment:
 *
 *   driver 550.54.15                      nvmlSystemGetDriverVersion
 *   cuda 12040                            nvmlSystemGetCudaDriverVersion[_v2]
 *   init_error 9                          nvmlInit* returns this code
 *   not_supported nvmlDeviceGetMigMode    that function returns 3 (repeatable)
 *   gpu index=0 uuid=GPU-... minor=0 name=NVIDIA_H100 bus=00000000:17:00.0
 *       mem_total=N mem_used=N mem_reserved=N util_gpu=N util_mem=N mig=0|1
 *       pci_device_id=0x233010DE            (all fields optional; '_' in name = ' ')
 *   proc gpu=1 pid=4242 mem=1073741824    a compute process on GPU index 1
 *       sm=N                              its SM use (%), which nvmlDeviceGetProcessUtilization
 *                                         samples (a process with sm=0 has no sample, as NVML)
 *
 * Config errors make nvmlInit return NVML_ERROR_UNKNOWN (999) and print a
 * "fake-nvml:" line on stderr, so a broken test setup is loud.
 *
 * Types are declared here (no nvml.h available); layouts match nvml.h v12
 * and the nvml-wrapper-sys 0.10 bindings, checked with _Static_assert.
 * Internal helpers are static so copies of this library loaded side by side
 * (RTLD_LOCAL) never call into each other.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- NVML ABI ---------------------------------------------------------- */

typedef int nvmlReturn_t; /* a C enum: int-sized on every ABI NVML ships for */

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NOT_FOUND 6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_UNKNOWN 999

#define NVML_DEVICE_MIG_DISABLE 0
#define NVML_DEVICE_MIG_ENABLE 1
#define NVML_VALUE_NOT_AVAILABLE_UINT 0xFFFFFFFFu

typedef struct fake_gpu *nvmlDevice_t;

typedef struct {
    char busIdLegacy[16]; /* NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE */
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32]; /* NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE */
} nvmlPciInfo_t;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

/* NVML_STRUCT_VERSION(Memory, 2) == 0x02000028 */
#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

/* nvmlProcessInfo_t as used by the *_v3 process queries (a.k.a. _v2_t). */
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t layout");
_Static_assert(offsetof(nvmlPciInfo_t, busId) == 36, "nvmlPciInfo_t.busId");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t layout");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t layout");

/* ---- fake state -------------------------------------------------------- */

#define MAX_GPUS 16
#define MAX_PROCS 64
#define MAX_NOT_SUPPORTED 64

struct fake_gpu {
    int defined;
    unsigned int index;
    char uuid[96];
    unsigned int minor;
    char name[96];
    char bus_id[32]; /* "DDDDDDDD:BB:DD.F" */
    unsigned int pci_device_id;
    unsigned long long mem_total, mem_used, mem_reserved;
    unsigned int util_gpu, util_mem;
    int mig;
    int persistence; /* persistence mode: on by default, as on a well-kept host */
};

struct fake_proc {
    unsigned int gpu;
    unsigned int pid;
    unsigned long long mem;
    unsigned int sm;
};

static struct {
    int refcount; /* NVML is reference counted: init/shutdown pairs */
    char driver[80];
    int cuda;
    int init_error;
    unsigned int gpu_count;
    struct fake_gpu gpus[MAX_GPUS];
    unsigned int proc_count;
    struct fake_proc procs[MAX_PROCS];
    unsigned int not_supported_count;
    char not_supported[MAX_NOT_SUPPORTED][64];
} g;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* Every function name the config may mark not_supported (catches typos). */
static const char *const known_functions[] = {
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetNVMLVersion",
    "nvmlSystemGetCudaDriverVersion",
    "nvmlSystemGetCudaDriverVersion_v2",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetHandleByPciBusId_v2",
    "nvmlDeviceGetIndex",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMinorNumber",
    "nvmlDeviceGetName",
    "nvmlDeviceGetPciInfo_v3",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMemoryInfo_v2",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetGraphicsRunningProcesses_v3",
    "nvmlDeviceGetProcessUtilization",
    "nvmlDeviceGetMigMode",
    NULL,
};

static int is_not_supported(const char *fn)
{
    for (unsigned int i = 0; i < g.not_supported_count; i++)
        if (strcmp(g.not_supported[i], fn) == 0)
            return 1;
    return 0;
}

/* Common prologue: the real library answers Uninitialized before anything. */
#define GUARD()                                   \
    do {                                          \
        if (g.refcount == 0)                      \
            return NVML_ERROR_UNINITIALIZED;      \
        if (is_not_supported(__func__))           \
            return NVML_ERROR_NOT_SUPPORTED;      \
    } while (0)

/* A handle is only valid if it points at one of *this* copy's GPUs. */
#define DEVICE_GUARD(dev)                                                  \
    do {                                                                   \
        GUARD();                                                           \
        if ((uintptr_t)(dev) < (uintptr_t)&g.gpus[0] ||                    \
            (uintptr_t)(dev) >= (uintptr_t)&g.gpus[g.gpu_count])           \
            return NVML_ERROR_INVALID_ARGUMENT;                            \
    } while (0)

static nvmlReturn_t copy_string(char *dst, unsigned int len, const char *src)
{
    if (dst == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > len)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(dst, src);
    return NVML_SUCCESS;
}

/* ---- config ------------------------------------------------------------ */

static int config_fail(const char *path, int line, const char *what, const char *arg)
{
    fprintf(stderr, "fake-nvml: %s:%d: %s%s%s\n", path, line, what, arg ? ": " : "", arg ? arg : "");
    return NVML_ERROR_UNKNOWN;
}

static int parse_ull(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || *s == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_uint(const char *s, unsigned int *out)
{
    unsigned long long v;
    if (parse_ull(s, &v) != 0 || v > 0xFFFFFFFFull)
        return -1;
    *out = (unsigned int)v;
    return 0;
}

static int set_str(char *dst, size_t cap, const char *src)
{
    if (strlen(src) + 1 > cap)
        return -1;
    strcpy(dst, src);
    return 0;
}

static void default_gpu(struct fake_gpu *gpu, unsigned int index)
{
    static const unsigned int buses[8] = {0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB};
    memset(gpu, 0, sizeof *gpu);
    gpu->defined = 1;
    gpu->index = index;
    snprintf(gpu->uuid, sizeof gpu->uuid, "GPU-00000000-0000-0000-0000-%012x", index);
    gpu->minor = index;
    strcpy(gpu->name, "NVIDIA H100 80GB HBM3");
    snprintf(gpu->bus_id, sizeof gpu->bus_id, "00000000:%02X:00.0",
             index < 8 ? buses[index] : 0x10 + index);
    gpu->pci_device_id = 0x233010DE; /* H100 SXM5: device 0x2330, vendor 0x10DE */
    gpu->mem_total = 80ull << 30;
    gpu->mem_used = 1ull << 20;
    gpu->persistence = 1;
}

/* "gpu key=value ..." */
static int parse_gpu(char *rest, const char *path, int line, unsigned int *next_index)
{
    struct fake_gpu tmp;
    char *save = NULL;
    unsigned int index = *next_index;

    /* The index decides the defaults, so look for it first. */
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", rest);
    for (char *tok = strtok_r(copy, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save))
        if (strncmp(tok, "index=", 6) == 0 && parse_uint(tok + 6, &index) != 0)
            return config_fail(path, line, "bad index", tok);
    if (index >= MAX_GPUS)
        return config_fail(path, line, "gpu index out of range (max 16 GPUs)", NULL);
    if (g.gpus[index].defined)
        return config_fail(path, line, "duplicate gpu index", NULL);
    default_gpu(&tmp, index);

    save = NULL;
    for (char *tok = strtok_r(rest, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return config_fail(path, line, "expected key=value", tok);
        *eq = '\0';
        const char *k = tok, *v = eq + 1;
        int bad = 0;
        if (strcmp(k, "index") == 0) {
            /* handled above */
        } else if (strcmp(k, "uuid") == 0) {
            bad = set_str(tmp.uuid, sizeof tmp.uuid, v);
        } else if (strcmp(k, "minor") == 0) {
            bad = parse_uint(v, &tmp.minor);
        } else if (strcmp(k, "name") == 0) {
            bad = set_str(tmp.name, sizeof tmp.name, v);
            for (char *p = tmp.name; *p; p++)
                if (*p == '_')
                    *p = ' ';
        } else if (strcmp(k, "bus") == 0) {
            unsigned int d, b, dev, f;
            bad = set_str(tmp.bus_id, sizeof tmp.bus_id, v) ||
                  sscanf(v, "%x:%x:%x.%x", &d, &b, &dev, &f) != 4;
        } else if (strcmp(k, "pci_device_id") == 0) {
            bad = parse_uint(v, &tmp.pci_device_id);
        } else if (strcmp(k, "mem_total") == 0) {
            bad = parse_ull(v, &tmp.mem_total);
        } else if (strcmp(k, "mem_used") == 0) {
            bad = parse_ull(v, &tmp.mem_used);
        } else if (strcmp(k, "mem_reserved") == 0) {
            bad = parse_ull(v, &tmp.mem_reserved);
        } else if (strcmp(k, "util_gpu") == 0) {
            bad = parse_uint(v, &tmp.util_gpu);
        } else if (strcmp(k, "util_mem") == 0) {
            bad = parse_uint(v, &tmp.util_mem);
        } else if (strcmp(k, "mig") == 0) {
            unsigned int m;
            bad = parse_uint(v, &m) || m > 1;
            tmp.mig = (int)m;
        } else if (strcmp(k, "persistence") == 0) {
            unsigned int m;
            bad = parse_uint(v, &m) || m > 1;
            tmp.persistence = (int)m;
        } else {
            return config_fail(path, line, "unknown gpu field", k);
        }
        if (bad)
            return config_fail(path, line, "bad value for gpu field", k);
    }
    if (tmp.mem_used + tmp.mem_reserved > tmp.mem_total)
        return config_fail(path, line, "mem_used + mem_reserved exceeds mem_total", NULL);
    g.gpus[index] = tmp;
    *next_index = index + 1;
    return 0;
}

/* "proc gpu=N pid=N mem=N" */
static int parse_proc(char *rest, const char *path, int line)
{
    struct fake_proc p = {0, 0, 0, 0};
    int have_gpu = 0, have_pid = 0;
    char *save = NULL;
    if (g.proc_count >= MAX_PROCS)
        return config_fail(path, line, "too many procs (max 64)", NULL);
    for (char *tok = strtok_r(rest, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return config_fail(path, line, "expected key=value", tok);
        *eq = '\0';
        int bad;
        if (strcmp(tok, "gpu") == 0) {
            bad = parse_uint(eq + 1, &p.gpu);
            have_gpu = 1;
        } else if (strcmp(tok, "pid") == 0) {
            bad = parse_uint(eq + 1, &p.pid);
            have_pid = 1;
        } else if (strcmp(tok, "mem") == 0) {
            bad = parse_ull(eq + 1, &p.mem);
        } else if (strcmp(tok, "sm") == 0) {
            bad = parse_uint(eq + 1, &p.sm) || p.sm > 100;
        } else {
            return config_fail(path, line, "unknown proc field", tok);
        }
        if (bad)
            return config_fail(path, line, "bad value for proc field", tok);
    }
    if (!have_gpu || !have_pid)
        return config_fail(path, line, "proc needs gpu= and pid=", NULL);
    g.procs[g.proc_count++] = p;
    return 0;
}

static int config_path(char *out, size_t cap)
{
    const char *env = getenv("FAKE_NVML_CONFIG");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    /* Find this library's own file: the config lives next to it. */
    Dl_info info;
    if (dladdr((void *)&config_path, &info) == 0 || info.dli_fname == NULL)
        return -1;
    const char *slash = strrchr(info.dli_fname, '/');
    if (slash == NULL)
        snprintf(out, cap, "fake-nvml.conf");
    else
        snprintf(out, cap, "%.*s/fake-nvml.conf", (int)(slash - info.dli_fname), info.dli_fname);
    return 0;
}

static int load_config(void)
{
    char path[4096];
    memset(&g, 0, sizeof g);
    strcpy(g.driver, "550.54.15");
    g.cuda = 12040;

    if (config_path(path, sizeof path) != 0)
        return config_fail("?", 0, "cannot locate own library file for the config", NULL);
    FILE *f = fopen(path, "r");
    if (!f)
        return config_fail(path, 0, "cannot open config", strerror(errno));

    char buf[1024];
    int line = 0, rc = 0;
    unsigned int next_index = 0;
    while (rc == 0 && fgets(buf, sizeof buf, f)) {
        line++;
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL;
        char *kw = strtok_r(buf, " \t\r\n", &save);
        if (!kw)
            continue;
        /* Keep the key=value part intact: tokenising for arg cuts it up. */
        char rest[1024];
        snprintf(rest, sizeof rest, "%s", save ? save : "");
        char *arg = strtok_r(NULL, " \t\r\n", &save);

        if (strcmp(kw, "driver") == 0) {
            if (!arg || set_str(g.driver, sizeof g.driver, arg) != 0)
                rc = config_fail(path, line, "driver needs a version", NULL);
        } else if (strcmp(kw, "cuda") == 0) {
            unsigned int v;
            if (!arg || parse_uint(arg, &v) != 0)
                rc = config_fail(path, line, "cuda needs a number like 12040", NULL);
            else
                g.cuda = (int)v;
        } else if (strcmp(kw, "init_error") == 0) {
            unsigned int v;
            if (!arg || parse_uint(arg, &v) != 0)
                rc = config_fail(path, line, "init_error needs a number", NULL);
            else
                g.init_error = (int)v;
        } else if (strcmp(kw, "not_supported") == 0) {
            int known = 0;
            for (const char *const *k = known_functions; arg && *k; k++)
                known |= strcmp(*k, arg) == 0;
            if (!known)
                rc = config_fail(path, line, "not_supported: not a function this fake implements", arg);
            else if (g.not_supported_count >= MAX_NOT_SUPPORTED)
                rc = config_fail(path, line, "too many not_supported lines", NULL);
            else
                strcpy(g.not_supported[g.not_supported_count++], arg);
        } else if (strcmp(kw, "gpu") == 0) {
            rc = parse_gpu(rest, path, line, &next_index);
        } else if (strcmp(kw, "proc") == 0) {
            rc = parse_proc(rest, path, line);
        } else {
            rc = config_fail(path, line, "unknown directive", kw);
        }
    }
    fclose(f);
    if (rc != 0)
        return rc;

    /* GPU indices must be dense: 0..count-1. */
    for (g.gpu_count = 0; g.gpu_count < MAX_GPUS && g.gpus[g.gpu_count].defined; g.gpu_count++)
        ;
    for (unsigned int i = g.gpu_count; i < MAX_GPUS; i++)
        if (g.gpus[i].defined)
            return config_fail(path, 0, "gpu indices must be 0..N-1 without gaps", NULL);
    for (unsigned int i = 0; i < g.proc_count; i++)
        if (g.procs[i].gpu >= g.gpu_count)
            return config_fail(path, 0, "proc refers to a gpu index that does not exist", NULL);
    return 0;
}

static nvmlReturn_t do_init(void)
{
    nvmlReturn_t rc = NVML_SUCCESS;
    /* Tests count how often a run initialises NVML (once per run, however
       many profiles): one line per init in $FAKE_NVML_LOG. */
    const char *log = getenv("FAKE_NVML_LOG");
    if (log && *log) {
        FILE *f = fopen(log, "a");
        if (f) {
            fprintf(f, "init %d\n", (int)getpid());
            fclose(f);
        }
    }
    pthread_mutex_lock(&g_lock);
    if (g.refcount > 0) {
        g.refcount++;
    } else {
        /* Re-read on every first init, so a test may rewrite the config. */
        rc = load_config();
        if (rc == NVML_SUCCESS && g.init_error != 0)
            rc = g.init_error;
        if (rc == NVML_SUCCESS)
            g.refcount = 1;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

/* ---- exported API ------------------------------------------------------ */

#ifndef OMIT_nvmlInit_v2
nvmlReturn_t nvmlInit_v2(void)
{
    return do_init();
}
#endif

#ifndef OMIT_nvmlInitWithFlags
nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags; /* NO_GPUS / NO_ATTACH change nothing here: zero GPUs is never an error */
    return do_init();
}
#endif

#ifndef OMIT_nvmlShutdown
nvmlReturn_t nvmlShutdown(void)
{
    nvmlReturn_t rc = NVML_SUCCESS;
    pthread_mutex_lock(&g_lock);
    if (g.refcount == 0)
        rc = NVML_ERROR_UNINITIALIZED;
    else if (is_not_supported(__func__))
        rc = NVML_ERROR_NOT_SUPPORTED;
    else
        g.refcount--;
    pthread_mutex_unlock(&g_lock);
    return rc;
}
#endif

#ifndef OMIT_nvmlErrorString
const char *nvmlErrorString(nvmlReturn_t result)
{
    /* Exactly what the real libnvidia-ml 580.159.04 answers. */
    switch (result) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 5: return "Already Initialized";
    case 6: return "Not Found";
    case 7: return "Insufficient Size";
    case 8: return "Insufficient External Power";
    case 9: return "Driver Not Loaded";
    case 10: return "Timeout";
    case 11: return "Interrupt Request Issue";
    case 12: return "NVML Shared Library Not Found";
    case 13: return "Function Not Found";
    case 14: return "Corrupted infoROM";
    case 15: return "GPU is lost";
    case 16: return "GPU requires reset";
    case 17: return "GPU access blocked by the operating system";
    case 18: return "Driver/library version mismatch";
    case 19: return "In use by another client";
    case 20: return "Insufficient Memory";
    case 21: return "No data";
    case 22: return "vGPU ECC not supported";
    case 23: return "Insufficient Resources";
    case 24: return "Invalid Frequency";
    case 25: return "Argument version mismatch";
    case 26: return "Requested functionality has been deprecated";
    case 27: return "System is not in ready state";
    case 28: return "No supported GPUs were found";
    case 29: return "Resource not in correct state to perform requested operation";
    case 30: return "Reset type is not supported for given device";
    default: return "Unknown Error";
    }
}
#endif

#ifndef OMIT_nvmlSystemGetDriverVersion
nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    GUARD();
    return copy_string(version, length, g.driver);
}
#endif

#ifndef OMIT_nvmlSystemGetNVMLVersion
nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    char buf[96];
    GUARD();
    /* The real one is "<cuda major>.<driver version>", e.g. "12.550.54.15". */
    snprintf(buf, sizeof buf, "%d.%s", g.cuda / 1000, g.driver);
    return copy_string(version, length, buf);
}
#endif

static nvmlReturn_t cuda_version(int *out)
{
    if (out == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *out = g.cuda;
    return NVML_SUCCESS;
}

#ifndef OMIT_nvmlSystemGetCudaDriverVersion
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion)
{
    GUARD();
    return cuda_version(cudaDriverVersion);
}
#endif

#ifndef OMIT_nvmlSystemGetCudaDriverVersion_v2
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    GUARD();
    return cuda_version(cudaDriverVersion);
}
#endif

#ifndef OMIT_nvmlDeviceGetCount_v2
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    GUARD();
    if (deviceCount == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *deviceCount = g.gpu_count;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetHandleByIndex_v2
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    GUARD();
    if (device == NULL || index >= g.gpu_count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &g.gpus[index];
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetHandleByUUID
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    GUARD();
    if (uuid == NULL || device == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < g.gpu_count; i++) {
        if (strcmp(g.gpus[i].uuid, uuid) == 0) {
            *device = &g.gpus[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}
#endif

#ifndef OMIT_nvmlDeviceGetHandleByPciBusId_v2
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device)
{
    GUARD();
    if (pciBusId == NULL || device == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < g.gpu_count; i++) {
        if (strcasecmp(g.gpus[i].bus_id, pciBusId) == 0) {
            *device = &g.gpus[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}
#endif

#ifndef OMIT_nvmlDeviceGetIndex
nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    DEVICE_GUARD(device);
    if (index == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *index = device->index;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetUUID
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    DEVICE_GUARD(device);
    return copy_string(uuid, length, device->uuid);
}
#endif

#ifndef OMIT_nvmlDeviceGetMinorNumber
nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber)
{
    DEVICE_GUARD(device);
    if (minorNumber == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *minorNumber = device->minor;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetName
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    DEVICE_GUARD(device);
    return copy_string(name, length, device->name);
}
#endif

#ifndef OMIT_nvmlDeviceGetPciInfo_v3
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    unsigned int domain = 0, bus = 0, dev = 0, fn = 0;
    DEVICE_GUARD(device);
    if (pci == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    sscanf(device->bus_id, "%x:%x:%x.%x", &domain, &bus, &dev, &fn);
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busId, sizeof pci->busId, "%s", device->bus_id);
    /* The legacy field has a 4-digit domain: "0000:18:00.0". */
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.%X",
             domain & 0xFFFF, bus & 0xFF, dev & 0xFF, fn & 0xF);
    pci->domain = domain;
    pci->bus = bus;
    pci->device = dev;
    pci->pciDeviceId = device->pci_device_id;
    pci->pciSubSystemId = 0x16C110DE;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetMemoryInfo
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    DEVICE_GUARD(device);
    if (memory == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    /* v1 has no "reserved": like the real one, count it as used. */
    memory->total = device->mem_total;
    memory->used = device->mem_used + device->mem_reserved;
    memory->free = device->mem_total - memory->used;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetMemoryInfo_v2
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    DEVICE_GUARD(device);
    if (memory == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    /* The real library rejects a caller that did not set the struct
     * version; driver 580 answers Function Not Found (13) for that. */
    if (memory->version != nvmlMemory_v2)
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    memory->total = device->mem_total;
    memory->reserved = device->mem_reserved;
    memory->used = device->mem_used;
    memory->free = device->mem_total - device->mem_reserved - device->mem_used;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetUtilizationRates
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
    DEVICE_GUARD(device);
    if (utilization == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    utilization->gpu = device->util_gpu;
    utilization->memory = device->util_mem;
    return NVML_SUCCESS;
}
#endif

/*
 * The count in/out protocol: *infoCount is the capacity of infos on input
 * and the number of processes on output. If it is too small (including the
 * count query with infos == NULL and *infoCount == 0) the answer is
 * NVML_ERROR_INSUFFICIENT_SIZE with *infoCount set to what is needed.
 */
static nvmlReturn_t list_procs(nvmlDevice_t device, unsigned int *infoCount,
                               nvmlProcessInfo_t *infos, int graphics)
{
    unsigned int n = 0;
    if (infoCount == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!graphics)
        for (unsigned int i = 0; i < g.proc_count; i++)
            n += g.procs[i].gpu == device->index;
    if (*infoCount < n) {
        *infoCount = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (infos == NULL && n > 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int out = 0;
    for (unsigned int i = 0; i < g.proc_count && out < n; i++) {
        if (g.procs[i].gpu != device->index)
            continue;
        infos[out].pid = g.procs[i].pid;
        infos[out].usedGpuMemory = g.procs[i].mem;
        /* Not a MIG device: both instance ids read "not available". */
        infos[out].gpuInstanceId = NVML_VALUE_NOT_AVAILABLE_UINT;
        infos[out].computeInstanceId = NVML_VALUE_NOT_AVAILABLE_UINT;
        out++;
    }
    *infoCount = n;
    return NVML_SUCCESS;
}

#ifndef OMIT_nvmlDeviceGetComputeRunningProcesses_v3
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                     nvmlProcessInfo_t *infos)
{
    DEVICE_GUARD(device);
    return list_procs(device, infoCount, infos, 0);
}
#endif

#ifndef OMIT_nvmlDeviceGetGraphicsRunningProcesses_v3
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                      nvmlProcessInfo_t *infos)
{
    DEVICE_GUARD(device);
    return list_procs(device, infoCount, infos, 1);
}
#endif

/* nvmlProcessUtilizationSample_t */
typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil;
    unsigned int memUtil;
    unsigned int encUtil;
    unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

_Static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "nvmlProcessUtilizationSample_t layout");

#ifndef OMIT_nvmlDeviceGetProcessUtilization
/* One sample a process that used the SMs (sm > 0), stamped now: what the
 * driver has buffered since any earlier timestamp. */
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t *utilization,
                                             unsigned int *processSamplesCount,
                                             unsigned long long lastSeenTimeStamp)
{
    DEVICE_GUARD(device);
    (void)lastSeenTimeStamp;
    if (processSamplesCount == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int n = 0;
    for (unsigned int i = 0; i < g.proc_count; i++)
        n += g.procs[i].gpu == device->index && g.procs[i].sm > 0;
    if (utilization == NULL || *processSamplesCount < n) {
        *processSamplesCount = n;
        return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    unsigned int out = 0;
    for (unsigned int i = 0; i < g.proc_count && out < n; i++) {
        if (g.procs[i].gpu != device->index || g.procs[i].sm == 0)
            continue;
        utilization[out].pid = g.procs[i].pid;
        utilization[out].timeStamp = 1700000000000000ULL;
        utilization[out].smUtil = g.procs[i].sm;
        utilization[out].memUtil = 0;
        utilization[out].encUtil = 0;
        utilization[out].decUtil = 0;
        out++;
    }
    *processSamplesCount = out;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetMigMode
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode)
{
    DEVICE_GUARD(device);
    if (currentMode == NULL || pendingMode == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *currentMode = device->mig ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
    *pendingMode = *currentMode;
    return NVML_SUCCESS;
}
#endif

#ifndef OMIT_nvmlDeviceGetPersistenceMode
nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, unsigned int *mode)
{
    DEVICE_GUARD(device);
    if (mode == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *mode = device->persistence ? 1 : 0;
    return NVML_SUCCESS;
}
#endif
