/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The machine-level part of QEMU's command line; devices are in qemu-command-devices.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "conf/conf-util.h"
#include "conf/domain-access.h"
#include "conf/domain-devices.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-cpu.h"
#include "util/strbuf.h"

void qemu_argv_add(QemuArgv *a, const char *s) {
        char *c;

        if (a->oom)
                return;
        c = strdup(s);
        if (!c || !GREEDY_REALLOC(a->v, a->allocated, a->n + 2)) {
                free(c);
                a->oom = true;
                return;
        }
        a->v[a->n++] = c;
        a->v[a->n] = NULL;
}

void qemu_argv_addf(QemuArgv *a, const char *format, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0) {
                s = NULL;
                a->oom = true;
                return;
        }
        qemu_argv_add(a, s);
}

void qemu_argv_done(QemuArgv *a) {
        for (size_t i = 0; i < a->n; i++)
                free(a->v[i]);
        free(a->v);
        *a = (QemuArgv) {};
}

char *qemu_opt_escape(const char *s) {
        StrBuf b = STRBUF_NULL;

        for (const char *p = s; *p; p++) {
                if (*p == ',')
                        strbuf_append(&b, ",");
                strbuf_append_n(&b, p, 1);
        }
        if (!b.buf)
                strbuf_append(&b, "");
        return strbuf_steal(&b);
}

void qemu_command_done(QemuCommand *c) {
        qemu_argv_done(&c->argv);
        for (size_t i = 0; i < c->n_aliases; i++)
                free(c->aliases[i]);
        free(c->aliases);
        for (size_t i = 0; i < c->n_taps; i++) {
                free(c->taps[i].ifname);
                free(c->taps[i].bridge);
        }
        free(c->taps);
        free(c->vnc_password);
        *c = (QemuCommand) {};
}

int qemu_device_node(const DeviceDef *dev, ConfNode **ret) {
        return device_def_to_node(dev, DEVICE_FORMAT_SECURE, ret);
}

const char *qemu_node_attr(const ConfNode *n, const char *child, const char *attr) {
        if (child) {
                n = conf_node_child(n, child);
                if (!n)
                        return NULL;
        }
        return conf_node_attr(n, attr);
}

void qemu_pci_bus_id(uint32_t bus, bool q35, char ret[static 24]) {
        if (bus == 0 || bus == UINT32_MAX)
                snprintf(ret, 24, "%s", q35 ? "pcie.0" : "pci.0");
        else
                snprintf(ret, 24, "pci.%" PRIu32, bus);
}

bool qemu_pci_place(const DeviceAddress *a, bool q35, QemuPciPlace *ret) {
        if (a->type != DEVICE_ADDRESS_PCI || a->pci.slot == UINT32_MAX)
                return false;
        qemu_pci_bus_id(a->pci.bus, q35, ret->bus);
        snprintf(ret->addr, sizeof ret->addr, "0x%" PRIx32 ".0x%" PRIx32, a->pci.slot,
                 a->pci.function == UINT32_MAX ? 0 : a->pci.function);
        ret->multifunction = a->pci.multifunction > 0;
        return true;
}

char *qemu_pci_place_opts(const DeviceAddress *a, bool q35) {
        QemuPciPlace p;
        char *s;

        if (!qemu_pci_place(a, q35, &p))
                return strdup("");
        if (asprintf(&s, ",bus=%s,addr=%s%s", p.bus, p.addr, p.multifunction ? ",multifunction=on" : "") < 0)
                return NULL;
        return s;
}

/* A secure-boot loader (secure='yes', see qemu-firmware.c) works only with SMM, which <features><smm
 * state='on'/> also asks for. */
static bool loader_secure(const ConfNode *root) {
        const ConfNode *os = conf_node_child(root, "os");
        return os && streq_ptr(qemu_node_attr(os, "loader", "secure"), "yes");
}

static bool machine_smm(const ConfNode *root) {
        const ConfNode *f = conf_node_child(root, "features");
        return loader_secure(root) || (f && streq_ptr(qemu_node_attr(f, "smm", "state"), "on"));
}

/* -accel, with TCG's translation cache size from <features><tcg><tb-cache> (QEMU counts MiB; its default
 * of 1 GiB per guest is what a many-guest TCG host runs out of first). */
static int add_accel(QemuArgv *a, const ConfNode *root, bool kvm, VbError *reterr) {
        const ConfNode *f = conf_node_child(root, "features");
        const ConfNode *tcg = f ? conf_node_child(f, "tcg") : NULL;
        const ConfNode *tb = tcg ? conf_node_child(tcg, "tb-cache") : NULL;
        uint64_t kib;

        qemu_argv_add(a, "-accel");
        if (!tb) {
                qemu_argv_add(a, kvm ? "kvm" : "tcg");
                return 0;
        }
        if (kvm)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "<features><tcg> applies to domain type 'qemu' (TCG), not 'kvm'");
        if (!tb->text || conf_memory_to_kib(tb->text, conf_node_attr(tb, "unit"), &kib) < 0 || kib == 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "<features><tcg><tb-cache> needs a size such as '64' with unit='MiB', not '%s'",
                                    strempty(tb->text));
        qemu_argv_addf(a, "tcg,tb-size=%" PRIu64, (kib + 1023) / 1024);
        return 0;
}

/* microvm has PCI only through the PCIe host QEMU adds with pcie=on, and only with ACPI (without it QEMU
 * makes no host and then cannot find bus 'pcie.0'): a device on PCI needs <features><acpi/> there. */
static int microvm_check_pci(const DomainDef *def, VbError *reterr) {
        if (!domain_machine_is_microvm(def->os.machine) || def->features[DOMAIN_FEATURE_ACPI])
                return 0;
        for (size_t i = 0; i < def->n_devices; i++)
                if (def->devices[i]->address.type == DEVICE_ADDRESS_PCI)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "Device %zu of a microvm domain sits on PCI (<address type='pci'>), which "
                                            "QEMU's microvm has only with ACPI: add <features><acpi/></features>",
                                            i + 1);
        return 0;
}

static int add_machine(QemuBuildState *s, const ConfNode *root, VbError *reterr) {
        const DomainDef *def = s->def;
        QemuArgv *a = &s->cmd->argv;
        const char *machine = def->os.machine ?: "pc";
        bool kvm;
        int r;

        if (def->os.arch && !streq(def->os.arch, "x86_64") && !streq(def->os.arch, "i686"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "The qemu driver runs x86_64 guests only, not arch '%s'", def->os.arch);
        if (def->os.type && !streq(def->os.type, "hvm"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "The qemu driver runs OS type 'hvm' only, not '%s'", def->os.type);
        switch (def->virt_type) {
        case DOMAIN_VIRT_KVM:
                if (!s->p->kvm_usable)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "Domain type 'kvm' needs /dev/kvm, which this host does not offer; "
                                            "use type 'qemu'");
                kvm = true;
                break;
        case DOMAIN_VIRT_QEMU:
                kvm = false;
                break;
        default:
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "The qemu driver runs domain types 'kvm' and 'qemu', not '%s'",
                                    domain_virt_type_to_string(def->virt_type));
        }
        s->q35 = domain_machine_has_pcie_root(machine);
        s->builtin_ahci = domain_machine_is_q35(machine);
        r = microvm_check_pci(def, reterr);
        if (r < 0)
                return r;
        {
                _cleanup_free_ char *m = qemu_opt_escape(machine);
                if (!m)
                        return -ENOMEM;
                qemu_argv_add(a, "-machine");
                qemu_argv_addf(a, "%s,usb=off,dump-guest-core=off%s%s%s", m,
                               def->features[DOMAIN_FEATURE_ACPI] ? "" : ",acpi=off", machine_smm(root) ? ",smm=on" : "",
                               domain_machine_is_microvm(machine) && def->features[DOMAIN_FEATURE_ACPI] ? ",pcie=on" : "");
        }
        r = add_accel(a, root, kvm, reterr);
        if (r < 0)
                return r;

        {
                _cleanup_free_ char *cpu = NULL;

                r = qemu_cpu_argument(root, kvm, &cpu, reterr);
                if (r < 0)
                        return r;
                if (cpu) {
                        qemu_argv_add(a, "-cpu");
                        qemu_argv_add(a, cpu);
                }
        }
        qemu_argv_add(a, "-m");
        qemu_argv_addf(a, "size=%" PRIu64 "k", def->memory_kib);
        /* Room for every vCPU up to the maximum: those past current= are hot-plugged later (SetVCPUs). */
        qemu_argv_add(a, "-smp");
        if (domain_def_get_current_vcpus(def) < (def->vcpus ?: 1))
                qemu_argv_addf(a, "%u,maxcpus=%u", domain_def_get_current_vcpus(def), def->vcpus);
        else
                qemu_argv_addf(a, "%u", def->vcpus ?: 1);
        return 0;
}

const char *qemu_command_file_arg(const QemuCommandParams *p, size_t i, DomainOsPath os, const char *path,
                                  VbError *reterr) {
        const char *arg;

        if (!p->files)
                return path;
        arg = i == DOMAIN_PATH_NO_DEVICE ? qemu_files_arg_os(p->files, os) : qemu_files_arg_device(p->files, i, path);
        if (!arg)
                vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "'%s' was not opened for QEMU", path);
        return arg;
}

/* The -add-fd options of the descriptors QEMU inherits, each set marked with its device's alias (its
 * "opaque"), so that the set can be found and removed with the device (qemu-hotplug.c). */
static void add_fdsets(QemuBuildState *s) {
        const QemuFiles *f = s->p->files;

        for (size_t i = 0; f && i < f->n; i++) {
                const char *alias = f->v[i].device < s->cmd->n_aliases ? s->cmd->aliases[f->v[i].device] : NULL;
                for (size_t k = 0; k < 2 && f->v[i].fdset > 0; k++)
                        if (f->v[i].fds[k] >= 0) {
                                qemu_argv_add(&s->cmd->argv, "-add-fd");
                                qemu_argv_addf(&s->cmd->argv, "fd=%d,set=%u,opaque=%s", f->v[i].fds[k],
                                               f->v[i].fdset, alias ?: "os");
                        }
        }
}

static int add_os(QemuBuildState *s, const ConfNode *root, VbError *reterr) {
        const DomainOsDef *os = &s->def->os;
        QemuArgv *a = &s->cmd->argv;
        const ConfNode *osn = conf_node_child(root, "os");
        const char *loader_type = osn ? qemu_node_attr(osn, "loader", "type") : NULL;
        bool has_device_boot = false;

        if (osn && streq_ptr(conf_node_attr(osn, "firmware"), "efi") && isempty(os->loader))
                /* qemu_firmware_prepare() resolves it before a start. */
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "<os firmware='efi'> was not resolved to a <loader>");
        if (os->loader) {
                if (loader_type && streq(loader_type, "pflash")) {
                        const char *nvram, *larg;
                        bool readonly = !streq_ptr(qemu_node_attr(osn, "loader", "readonly"), "no");
                        _cleanup_free_ char *l = NULL, *v = NULL;
                        const ConfNode *nv = conf_node_child(osn, "nvram");

                        nvram = nv ? (!isempty(nv->text) ? nv->text : qemu_node_attr(nv, "source", "file")) : NULL;
                        larg = qemu_command_file_arg(s->p, DOMAIN_PATH_NO_DEVICE, DOMAIN_OS_PATH_LOADER, os->loader, reterr);
                        if (!larg)
                                return -EACCES;
                        if (nvram) {
                                nvram = qemu_command_file_arg(s->p, DOMAIN_PATH_NO_DEVICE, DOMAIN_OS_PATH_NVRAM, nvram, reterr);
                                if (!nvram)
                                        return -EACCES;
                        }
                        l = qemu_opt_escape(larg);
                        if (!l || (nvram && !(v = qemu_opt_escape(nvram))))
                                return -ENOMEM;
                        qemu_argv_add(a, "-drive");
                        qemu_argv_addf(a, "if=pflash,format=raw,unit=0,%sfile=%s", readonly ? "readonly=on," : "", l);
                        if (v && readonly) {
                                qemu_argv_add(a, "-drive");
                                qemu_argv_addf(a, "if=pflash,format=raw,unit=1,file=%s", v);
                        }
                        if (loader_secure(root)) {
                                qemu_argv_add(a, "-global");
                                qemu_argv_add(a, "driver=cfi.pflash01,property=secure,value=on");
                        }
                } else {
                        /* -bios opens a path: a memory copy of the ROM (qemu-files.h). */
                        const char *arg = qemu_command_file_arg(s->p, DOMAIN_PATH_NO_DEVICE, DOMAIN_OS_PATH_BIOS,
                                                                os->loader, reterr);
                        if (!arg)
                                return -EACCES;
                        qemu_argv_add(a, "-bios");
                        qemu_argv_add(a, arg);
                }
        }
        if (os->kernel) {
                const char *arg = qemu_command_file_arg(s->p, DOMAIN_PATH_NO_DEVICE, DOMAIN_OS_PATH_KERNEL, os->kernel,
                                                        reterr);
                if (!arg)
                        return -EACCES;
                qemu_argv_add(a, "-kernel");
                qemu_argv_add(a, arg);
        }
        if (os->initrd) {
                const char *arg = qemu_command_file_arg(s->p, DOMAIN_PATH_NO_DEVICE, DOMAIN_OS_PATH_INITRD, os->initrd,
                                                        reterr);
                if (!arg)
                        return -EACCES;
                qemu_argv_add(a, "-initrd");
                qemu_argv_add(a, arg);
        }
        if (os->cmdline) {
                qemu_argv_add(a, "-append");
                qemu_argv_add(a, os->cmdline);
        }
        for (size_t i = 0; i < s->def->n_devices; i++)
                if (s->def->devices[i]->boot_order > 0)
                        has_device_boot = true;
        if (os->n_boot > 0 && !has_device_boot) {
                static const char letters[_DOMAIN_BOOT_MAX] = {
                        [DOMAIN_BOOT_FD] = 'a', [DOMAIN_BOOT_CDROM] = 'd', [DOMAIN_BOOT_HD] = 'c',
                        [DOMAIN_BOOT_NETWORK] = 'n',
                };
                char order[_DOMAIN_BOOT_MAX + 1] = {};
                for (size_t i = 0; i < os->n_boot && i < _DOMAIN_BOOT_MAX; i++)
                        order[i] = letters[os->boot[i]];
                qemu_argv_add(a, "-boot");
                qemu_argv_addf(a, "order=%s", order);
        }
        return 0;
}

int qemu_command_build(const DomainDef *def, const QemuCommandParams *p, QemuCommand *ret, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *root = NULL;
        QemuCommand cmd = {};
        QemuBuildState s = { .def = def, .p = p, .cmd = &cmd };
        QemuArgv *a = &cmd.argv;
        DomainUUIDString uuid = domain_def_uuid(def);
        _cleanup_free_ char *name = NULL;
        int r;

        r = domain_def_to_node(def, DOMAIN_FORMAT_SECURE, &root);
        if (r < 0)
                return r;
        name = qemu_opt_escape(domain_def_get_name(def));
        cmd.aliases = new0(char *, def->n_devices);
        if (!name || !cmd.aliases)
                return -ENOMEM;
        cmd.n_aliases = def->n_devices;

        qemu_argv_add(a, p->emulator);
        qemu_argv_add(a, "-name");
        qemu_argv_addf(a, "guest=%s,debug-threads=on", name);
        qemu_argv_add(a, "-uuid");
        qemu_argv_add(a, uuid.s);
        qemu_argv_add(a, "-S");
        qemu_argv_add(a, "-nodefaults");
        qemu_argv_add(a, "-no-user-config");
        qemu_argv_add(a, "-display");
        qemu_argv_add(a, "none");
        qemu_argv_add(a, "-msg");
        qemu_argv_add(a, "timestamp=on");
        if (p->files) {
                /* No new processes, no privileges, no obsolete calls: all it needs it was given. */
                qemu_argv_add(a, "-sandbox");
                qemu_argv_add(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
        }
        qemu_argv_add(a, "-chardev");
        qemu_argv_addf(a, "socket,id=charmonitor,fd=%d,server=on,wait=off", p->monitor_fd);
        qemu_argv_add(a, "-mon");
        qemu_argv_add(a, "chardev=charmonitor,id=monitor,mode=control");
        /* The guest powering off stops it; we decide what follows (on_poweroff). */
        qemu_argv_add(a, "-no-shutdown");
        if (domain_def_get_lifecycle(def, DOMAIN_LIFECYCLE_ON_REBOOT) == DOMAIN_LIFECYCLE_DESTROY)
                qemu_argv_add(a, "-no-reboot");
        if (def->clock_offset == DOMAIN_CLOCK_LOCALTIME) {
                qemu_argv_add(a, "-rtc");
                qemu_argv_add(a, "base=localtime");
        }

        r = add_machine(&s, root, reterr);
        if (r >= 0)
                r = add_os(&s, root, reterr);
        if (r >= 0)
                r = qemu_command_add_controllers(&s, reterr);
        for (size_t i = 0; r >= 0 && i < def->n_devices; i++)
                r = qemu_command_add_device(&s, i, reterr);
        if (r >= 0 && cmd.has_vnc && !s.has_video) {
                qemu_argv_add(a, "-device");
                qemu_argv_add(a, "VGA,id=video0");
        }
        if (r >= 0)
                add_fdsets(&s); /* now that the devices have their aliases */
        if (r >= 0 && a->oom)
                r = -ENOMEM;
        if (r < 0) {
                qemu_command_done(&cmd);
                return r;
        }
        *ret = cmd;
        return 0;
}
