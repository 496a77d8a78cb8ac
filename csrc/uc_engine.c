/*
 * The engine itself, driven without unicorn's Python binding: open libunicorn, make the
 * one x86-64 engine, map memory, start and stop it, read and write its registers.
 *
 * Why: importing the binding costs ~10 ms of every vmm start (it pulls in
 * importlib.resources, zipfile, tempfile... to find its library), a tenth of a whole
 * toy OS boot. vmm needs only these few calls; the binding is loaded when the debugger
 * adds its Python hooks (vmm.cpu.unicorn_debug), on this same engine.
 *
 * Included by build_uc_glue.py after uc_glue.c (the same translation unit: resolve()
 * and the p_uc_* pointers are shared).
 */

static uc_err (*p_uc_open)(uc_arch, uc_mode, uc_engine **);
static uc_err (*p_uc_close)(uc_engine *);
static unsigned int (*p_uc_version)(unsigned int *, unsigned int *);
static const char *(*p_uc_strerror)(uc_err);
static uc_err (*p_uc_emu_start)(uc_engine *, uint64_t, uint64_t, uint64_t, size_t);
static uc_err (*p_uc_mem_map_ptr)(uc_engine *, uint64_t, size_t, uint32_t, void *);
static uc_err (*p_uc_mem_unmap)(uc_engine *, uint64_t, size_t);

int vmm_engine_load(const char *libunicorn_path, char *err, int errlen)
{
    void *lib;
    if (resolve(libunicorn_path, err, errlen) < 0)
        return -1;
    lib = dlopen(libunicorn_path, RTLD_NOW | RTLD_NOLOAD); /* resolve() opened it */
    if (!lib) {
        snprintf(err, errlen, "cannot open %s: %s", libunicorn_path, dlerror());
        return -1;
    }
    RESOLVE(p_uc_open, "uc_open");
    RESOLVE(p_uc_close, "uc_close");
    RESOLVE(p_uc_version, "uc_version");
    RESOLVE(p_uc_strerror, "uc_strerror");
    RESOLVE(p_uc_emu_start, "uc_emu_start");
    RESOLVE(p_uc_mem_map_ptr, "uc_mem_map_ptr");
    RESOLVE(p_uc_mem_unmap, "uc_mem_unmap");
    return 0;
}

unsigned int vmm_engine_version(void)
{
    return p_uc_version(NULL, NULL); /* major << 24 | minor << 16 | patch << 8 | extra */
}

const char *vmm_engine_strerror(int status)
{
    return p_uc_strerror((uc_err)status);
}

/* A UC_MODE_64 engine whose runs end only by a stop (no exit addresses), its CPU made. */
int vmm_engine_open(void **out)
{
    uc_engine *uc = NULL;
    uint64_t none = 0;
    uc_err status = p_uc_open(UC_ARCH_X86, UC_MODE_64, &uc);
    if (status != UC_ERR_OK)
        return status;
    status = p_uc_ctl(uc, UC_CTL_WRITE(UC_CTL_UC_USE_EXITS, 1), 1);
    if (status == UC_ERR_OK)
        status = p_uc_ctl(uc, UC_CTL_WRITE(UC_CTL_UC_EXITS, 2), &none, (size_t)0);
    if (status != UC_ERR_OK) {
        p_uc_close(uc);
        return status;
    }
    *out = uc;
    return UC_ERR_OK;
}

int vmm_engine_close(void *uc)
{
    return p_uc_close(uc);
}

int vmm_engine_map_ptr(void *uc, uint64_t address, uint64_t size, void *host)
{
    return p_uc_mem_map_ptr(uc, address, (size_t)size, UC_PROT_ALL, host);
}

int vmm_engine_unmap(void *uc, uint64_t address, uint64_t size)
{
    return p_uc_mem_unmap(uc, address, (size_t)size);
}

int vmm_engine_start(void *uc, uint64_t begin, uint64_t count)
{
    return p_uc_emu_start(uc, begin, 0, 0, (size_t)count);
}

int vmm_engine_stop(void *uc)
{
    return p_uc_emu_stop(uc);
}

int vmm_engine_flush_tb(void *uc)
{
    return p_uc_ctl(uc, UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0));
}

/* The translated block entered at 'address' (translating it if need be): its start and
 * instruction count. */
int vmm_engine_block(void *uc, uint64_t address, uint64_t *pc, uint32_t *icount)
{
    uc_tb tb;
    uc_err status = p_uc_ctl(uc, UC_CTL_READ_WRITE(UC_CTL_TB_REQUEST_CACHE, 2), address, &tb);
    if (status != UC_ERR_OK)
        return status;
    *pc = tb.pc;
    *icount = tb.icount;
    return UC_ERR_OK;
}

/* Registers: 'value' holds as many bytes as the register has (8 for most; 10 for an
 * x87 register, as uc_x86_float80; 16 for an XMM register; uc_x86_msr for UC_X86_REG_MSR). */
int vmm_engine_reg_read(void *uc, int regid, void *value)
{
    return p_uc_reg_read(uc, regid, value);
}

int vmm_engine_reg_write(void *uc, int regid, const void *value)
{
    return p_uc_reg_write(uc, regid, value);
}
