/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain and host capabilities: the XML validates against libvirt's schemas (read from the shared corpus,
 * corpus/libvirt/schemas in the directory tests/shared-dir.sh names, at test time) and ours; the test driver's fixed set; the qemu probe
 * with the real QEMU on a copy of its binary (the cache in memory and on disk, and invalidation when the
 * file changes); the checks core applies to definitions and devices. */
#include <fcntl.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/relaxng.h>

#include "conf/conf-schema.h"
#include "conf/domain-conf.h"
#include "conf/domaincaps-conf.h"
#include "conf/hostcaps-conf.h"
#include "core/domain-caps.h"
#include "drivers/qemu/qemu-caps.h"
#include "drivers/test-driver-caps.h"
#include "tests/shared-dir.h"
#include "util/fileio.h"

#define QEMU "/usr/bin/qemu-system-x86_64"
#define QEMU_TRIPLET "x86_64-linux-gnu"

static char *libvirt_schema(const char *name) {
        _cleanup_free_ char *rel = NULL;
        char *p;

        assert_true(asprintf(&rel, "corpus/libvirt/schemas/%s", name) >= 0);
        p = test_shared_path(rel);
        assert_non_null(p);
        return p;
}

/* Validates xml against libvirt's schema; skips (returns false) when the corpus is not there. */
static bool validate_libvirt(const char *xml, const char *schema) {
        _cleanup_free_ char *path = libvirt_schema(schema);
        xmlRelaxNGParserCtxtPtr pc;
        xmlRelaxNGPtr rng;
        xmlRelaxNGValidCtxtPtr vc;
        xmlDocPtr doc;
        int r;

        if (access(path, R_OK) < 0) {
                print_message("(libvirt's %s is not at %s: not checked)\n", schema, path);
                return false;
        }
        pc = xmlRelaxNGNewParserCtxt(path);
        rng = xmlRelaxNGParse(pc);
        assert_non_null(rng);
        vc = xmlRelaxNGNewValidCtxt(rng);
        doc = xmlReadMemory(xml, (int) strlen(xml), "caps.xml", NULL, XML_PARSE_NONET);
        assert_non_null(doc);
        r = xmlRelaxNGValidateDoc(vc, doc);
        if (r != 0)
                fail_msg("does not validate against libvirt's %s:\n%s", schema, xml);
        xmlFreeDoc(doc);
        xmlRelaxNGFreeValidCtxt(vc);
        xmlRelaxNGFree(rng);
        xmlRelaxNGFreeParserCtxt(pc);
        return true;
}

static void validate_ours(const char *xml) {
        VbError e = VB_ERROR_NULL;
        void *doc = NULL;

        if (conf_schema_parse_and_validate(xml, "domaincaps.rng", &doc, &e) < 0)
                fail_msg("does not validate against data/schemas/domaincaps.rng: %s\n%s", strempty(e.message), xml);
        xmlFreeDoc(doc);
}

static DomainCaps *test_caps(const char *arch, const char *machine, const char *virttype, VbError *e) {
        DomainCaps *c = NULL;
        VbDomainCapsQuery q = { .arch = arch, .machine = machine, .virttype = virttype };
        int r = test_domain_capabilities(NULL, &q, NULL, NULL, &c, e);
        return r == 1 ? c : NULL;
}

static void test_tables(void **state) {
        for (size_t i = 0; i < domain_caps_device_table_size(); i++)
                assert_int_equal(domain_caps_device_from_string(domain_caps_device_to_string(i)), (int) i);
        for (size_t i = 0; i < domain_caps_feature_table_size(); i++)
                assert_int_equal(domain_caps_feature_from_string(domain_caps_feature_to_string(i)), (int) i);
        for (size_t i = 0; i < domain_caps_usable_table_size(); i++)
                assert_int_equal(domain_caps_usable_from_string(domain_caps_usable_to_string(i)), (int) i);
        assert_int_equal(domain_caps_device_from_string("nope"), -EINVAL);
}

static void test_test_driver_set(void **state) {
        _cleanup_(domain_caps_unrefp) DomainCaps *pc = NULL, *q35 = NULL, *dflt = NULL;
        VbError e = VB_ERROR_NULL;
        const char *xml;

        dflt = test_caps(NULL, "", "", &e);
        assert_non_null(dflt);
        assert_string_equal(dflt->machine, "pc-i440fx-test");
        assert_string_equal(dflt->arch, "x86_64");
        assert_string_equal(dflt->domain, "test");
        pc = test_caps("x86_64", "pc", "test", &e);
        assert_ptr_equal(pc, dflt); /* the alias is the same machine */
        q35 = test_caps("i686", "q35", NULL, &e);
        assert_string_equal(q35->machine, "pc-q35-test");
        assert_true(domain_caps_enum_has(&pc->devices[DOMAIN_CAPS_DISK], "bus", "ide"));
        assert_false(domain_caps_enum_has(&q35->devices[DOMAIN_CAPS_DISK], "bus", "ide"));
        xml = domain_caps_xml(q35);
        assert_non_null(xml);
        assert_non_null(strstr(xml, "<machine>pc-q35-test</machine>"));
        validate_ours(xml);
        validate_libvirt(xml, "domaincaps.rng");
        validate_ours(domain_caps_xml(pc));
        validate_libvirt(domain_caps_xml(pc), "domaincaps.rng");

        assert_null(test_caps(NULL, "pc-1.0", NULL, &e));
        assert_int_equal(e.code, VB_ERROR_INVALID_ARGUMENT);
        assert_non_null(strstr(e.message, "'pc-q35-test'"));
        vb_error_free(&e);
        assert_null(test_caps("armv7l", NULL, NULL, &e));
        assert_non_null(strstr(e.message, "'x86_64'"));
        vb_error_free(&e);
        assert_null(test_caps(NULL, NULL, "kvm", &e));
        assert_non_null(strstr(e.message, "'test'"));
        vb_error_free(&e);
}

static DeviceDef *device(const char *xml) {
        DeviceDef *d = NULL;
        VbError e = VB_ERROR_NULL;
        if (device_def_parse_string(xml, 0, &d, &e) < 0)
                fail_msg("%s: %s", xml, strempty(e.message));
        return d;
}

static void test_checks(void **state) {
        _cleanup_(domain_caps_unrefp) DomainCaps *pc = test_caps(NULL, "pc", NULL, NULL), *q35 = test_caps(NULL, "q35", NULL, NULL);
        _cleanup_(device_def_freep) DeviceDef *ide = device("<disk type='file'><source file='/a.img'/><target dev='hda' bus='ide'/></disk>");
        _cleanup_(device_def_freep) DeviceDef *hd = device("<disk type='file'><source file='/a.img'/><target dev='hdb'/></disk>");
        _cleanup_(device_def_freep) DeviceDef *vd = device("<disk type='file'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>");
        _cleanup_(device_def_freep) DeviceDef *pci = device("<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0' bus='3' slot='0' function='1'/></source></hostdev>");
        _cleanup_(device_def_freep) DeviceDef *netpci = device("<interface type='hostdev'><source><address type='pci' domain='0' bus='3' slot='0' function='2'/></source></interface>");
        _cleanup_(domain_caps_unrefp) DomainCaps *novfio = domain_caps_new();
        _cleanup_(domain_def_freep) DomainDef *def = NULL;
        VbError e = VB_ERROR_NULL;

        assert_int_equal(domain_caps_check_device_with(pc, ide, &e), 0);
        assert_int_equal(domain_caps_check_device_with(q35, ide, &e), -EOPNOTSUPP);
        assert_int_equal(e.code, VB_ERROR_NOT_SUPPORTED);
        assert_non_null(strstr(e.message, "bus 'ide'"));
        assert_non_null(strstr(e.message, "'pc-q35-test'"));
        vb_error_free(&e);
        /* No bus given: hd* means IDE. */
        assert_int_equal(domain_caps_check_device_with(q35, hd, &e), -EOPNOTSUPP);
        vb_error_free(&e);
        assert_int_equal(domain_caps_check_device_with(q35, vd, &e), 0);
        /* The test driver's simulated host has VFIO. */
        assert_int_equal(domain_caps_check_device_with(q35, pci, &e), 0);
        /* A hypervisor that offers no VFIO backend. */
        novfio->devices[DOMAIN_CAPS_HOSTDEV].supported = true;
        assert_int_equal(domain_caps_enum_add(&novfio->devices[DOMAIN_CAPS_HOSTDEV], "pciBackend", NULL), 0);
        assert_int_equal(domain_caps_check_device_with(novfio, pci, &e), -EOPNOTSUPP);
        assert_non_null(strstr(e.message, "'0000:03:00.1'"));
        assert_non_null(strstr(e.message, "VFIO"));
        vb_error_free(&e);
        assert_int_equal(domain_caps_check_device_with(novfio, netpci, &e), -EOPNOTSUPP);
        vb_error_free(&e);
        assert_int_equal(domain_caps_check_device_with(novfio, vd, &e), 0);
        {
                _cleanup_(device_def_freep) DeviceDef *sdl = device("<graphics type='sdl'/>"),
                                                      *vnc = device("<graphics type='vnc' port='-1'/>"),
                                                      *qxl = device("<video><model type='qxl'/></video>"),
                                                      *vga = device("<video><model type='vga'/></video>");
                assert_int_equal(domain_caps_check_device_with(q35, vnc, &e), 0);
                assert_int_equal(domain_caps_check_device_with(q35, vga, &e), 0);
                assert_int_equal(domain_caps_check_device_with(q35, sdl, &e), -EOPNOTSUPP);
                assert_non_null(strstr(e.message, "Graphics type 'sdl' is not available"));
                vb_error_free(&e);
                assert_int_equal(domain_caps_check_device_with(q35, qxl, &e), -EOPNOTSUPP);
                assert_non_null(strstr(e.message, "Video model 'qxl'"));
                vb_error_free(&e);
        }

        assert_int_equal(domain_def_parse_string("<domain type='test'><name>c</name><memory>1024</memory>"
                                                 "<os><type machine='q35'>hvm</type></os><devices>"
                                                 "<disk type='file'><source file='/b.img'/><target dev='vda'/></disk>"
                                                 "<disk type='file'><source file='/c.img'/><target dev='hdc' bus='ide'/></disk>"
                                                 "</devices></domain>",
                                                 0, &def, &e),
                         0);
        assert_int_equal(domain_caps_check_definition_with(q35, def, &e), -EOPNOTSUPP);
        assert_non_null(strstr(e.message, "Disk 'hdc'"));
        vb_error_free(&e);
        assert_int_equal(domain_caps_check_definition_with(pc, def, &e), 0);

        /* A CPU mode the capabilities do not offer: host-passthrough without KVM. */
        {
                _cleanup_(domain_def_freep) DomainDef *pt = NULL, *hm = NULL;
                _cleanup_(domain_caps_unrefp) DomainCaps *tcg = domain_caps_new();
#define CPU_MODE_XML(mode) \
        "<domain type='qemu'><name>c</name><memory>1024</memory><os><type>hvm</type></os><cpu mode='" mode "'/></domain>"
                assert_int_equal(domain_def_parse_string(CPU_MODE_XML("host-passthrough"), 0, &pt, &e), 0);
                assert_int_equal(domain_def_parse_string(CPU_MODE_XML("host-model"), 0, &hm, &e), 0);
                tcg->domain = strdup("qemu");
                tcg->machine = strdup("pc-i440fx-7.2");
                tcg->cpu_present = tcg->cpu_maximum = tcg->cpu_host_model = true;
                assert_int_equal(domain_caps_check_definition_with(tcg, pt, &e), -EOPNOTSUPP);
                assert_int_equal(e.code, VB_ERROR_NOT_SUPPORTED);
                assert_non_null(strstr(e.message, "host-passthrough"));
                assert_non_null(strstr(e.message, "needs KVM"));
                vb_error_free(&e);
                assert_int_equal(domain_caps_check_definition_with(tcg, hm, &e), 0);
                /* The test driver offers every mode. */
                assert_int_equal(domain_caps_check_definition_with(pc, pt, &e), 0);
                assert_int_equal(domain_caps_check_definition_with(pc, hm, &e), 0);
        }
}

static void test_host_caps(void **state) {
        _cleanup_(host_caps_unrefp) HostCaps *c = host_caps_new();
        HostCapsCell *cell;
        HostCapsGuest *g;
        const char *xml;

        c->arch = strdup("x86_64");
        c->cpu_vendor = strdup("AMD");
        c->cpu_svm = true;
        c->sockets = c->cores = c->threads = 1;
        c->iommu = 0;
        cell = host_caps_add_cell(c, 0, 1024);
        assert_int_equal(host_caps_cell_add_cpu(cell, 0, 0, 0, 0, "0"), 0);
        assert_int_equal(host_caps_cell_add_cpu(cell, 1, -1, -1, -1, NULL), 0);
        assert_int_equal(test_capabilities(NULL, c, NULL, NULL, NULL), 1);
        g = host_caps_add_guest(c, "hvm", "x86_64", 64, QEMU);
        assert_int_equal(host_caps_guest_add_machine(g, "pc", "pc-i440fx-7.2", 255, false), 0);
        assert_int_equal(host_caps_guest_add_domain_type(g, "kvm"), 0);
        xml = host_caps_xml(c);
        assert_non_null(xml);
        assert_non_null(strstr(xml, "<machine canonical='pc-q35-test' maxCpus='288'>q35</machine>"));
        assert_non_null(strstr(xml, "<iommu support='no'/>"));
        validate_libvirt(xml, "capability.rng");
}

/* The real QEMU ------------------------------------------------------------------------------------ */

static char *tmp;

static char *tmp_path(const char *rel) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", tmp, rel) >= 0);
        return p;
}

static void copy_file(const char *from, const char *to) {
        _cleanup_free_ char *data = NULL;
        size_t n;
        int fd;

        assert_int_equal(read_full_file(from, 512 * 1024 * 1024, &data, &n), 0);
        fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        close(fd);
}

static bool ready_called;
static void on_ready(void *userdata) {
        ready_called = true;
}

/* Runs the loop until the probe reported. */
static void wait_ready(sd_event *event) {
        for (int i = 0; i < 3000 && !ready_called; i++)
                assert_true(sd_event_run(event, 10 * 1000) >= 0);
        assert_true(ready_called);
        ready_called = false;
}

static QemuHostFacts facts(bool vfio) {
        return (QemuHostFacts) { .vfio_usable = vfio, .firmware_dirs = { "/usr/share/qemu/firmware", NULL } };
}

static void test_qemu_probe_and_cache(void **state) {
        _cleanup_free_ char *dir = tmp_path("bin"), *emu = tmp_path("bin/qemu-system-x86_64"),
                            *cache_dir = tmp_path("caps"), *probe_dir = tmp_path("probe"), *cached = NULL;
        QemuCapsCache *cache = NULL, *cache2 = NULL;
        QemuCaps *c1 = NULL, *c2 = NULL, *c3 = NULL;
        DomainCaps *dc = NULL;
        sd_event *event = NULL;
        VbError e = VB_ERROR_NULL;
        const QemuCapsMachine *m;
        QemuHostFacts host = facts(false);
        struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 1000000000 } };
        bool kvm = access("/dev/kvm", R_OK | W_OK) == 0;
        struct stat before, after;
        const char *disk_file;
        glob_t files;

        if (access(QEMU, X_OK) < 0)
                skip();
        /* QEMU finds its modules and data relative to its binary (../lib/<triplet>/qemu, ../share/qemu): the
         * copy gets the same layout, pointing at the real ones. */
        assert_int_equal(mkdir(dir, 0755), 0);
        copy_file(QEMU, emu);
        {
                _cleanup_free_ char *lib = tmp_path("lib"), *share = tmp_path("share"), *mod = tmp_path("lib/" QEMU_TRIPLET),
                                    *modq = tmp_path("lib/" QEMU_TRIPLET "/qemu"), *data = tmp_path("share/qemu");
                assert_int_equal(mkdir(lib, 0755), 0);
                assert_int_equal(mkdir(mod, 0755), 0);
                assert_int_equal(mkdir(share, 0755), 0);
                assert_int_equal(symlink("/usr/lib/" QEMU_TRIPLET "/qemu", modq), 0);
                assert_int_equal(symlink("/usr/share/qemu", data), 0);
        }
        assert_true(sd_event_new(&event) >= 0);
        assert_int_equal(qemu_caps_cache_new(event, cache_dir, probe_dir, kvm, NULL, &cache), 0);

        /* Nothing cached: a probe starts, and says when it is done. */
        assert_int_equal(qemu_caps_cache_get(cache, emu, on_ready, NULL, &c1, &e), 0);
        wait_ready(event);
        if (qemu_caps_cache_get(cache, emu, on_ready, NULL, &c1, &e) != 1)
                fail_msg("%s", strempty(e.message));
        assert_string_equal(c1->arch, "x86_64");
        assert_true(c1->version >= 7000000);
        /* Aliases resolve to the versioned machine. */
        m = qemu_caps_find_machine(c1, "q35");
        assert_non_null(m);
        assert_true(strncmp(m->name, "pc-q35-", 7) == 0);
        assert_int_equal(qemu_caps_domain_caps(c1, &host, "qemu", m, &dc), 0);
        assert_string_equal(dc->machine, m->name);
        assert_false(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "ide"));
        assert_true(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "sata"));
        assert_true(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "virtio"));
        assert_false(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_HOSTDEV], "pciBackend", "vfio"));
        assert_true(dc->n_cpu_models > 10);
        /* The CPU section from QEMU's expansions: a host-model, vendors of real models, "unknown" for QEMU's own. */
        assert_true(dc->cpu_host_model);
        assert_non_null(dc->host_model);
        assert_true(dc->cpu_maximum && dc->cpu_maximum_migratable);
        assert_false(dc->cpu_host_passthrough);
        for (size_t i = 0; i < dc->n_cpu_models; i++) {
                if (streq(dc->cpu_models[i].name, "qemu64"))
                        assert_string_equal(dc->cpu_models[i].vendor, "unknown");
                if (streq(dc->cpu_models[i].name, "EPYC"))
                        assert_string_equal(dc->cpu_models[i].vendor, "AMD");
                if (streq(dc->cpu_models[i].name, "Haswell"))
                        assert_string_equal(dc->cpu_models[i].vendor, "Intel");
        }
        assert_true(domain_caps_enum_has(&dc->hyperv, "features", "spinlocks"));
        /* Under TCG QEMU emulates no other enlightenment (start refuses them). */
        assert_false(domain_caps_enum_has(&dc->hyperv, "features", "relaxed"));
        validate_ours(domain_caps_xml(dc));
        validate_libvirt(domain_caps_xml(dc), "domaincaps.rng");
        dc = domain_caps_unref(dc);
        /* microvm: USB through its own xHCI, SATA on its PCIe host; no floppy (no ISA DMA there). */
        m = qemu_caps_find_machine(c1, "microvm");
        if (m) {
                assert_int_equal(qemu_caps_domain_caps(c1, &host, "qemu", m, &dc), 0);
                assert_true(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "usb"));
                assert_true(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "sata"));
                assert_false(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "fdc"));
                assert_false(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "diskDevice", "floppy"));
                /* No pflash there (microvm has no flash device), but a ROM loader, which secure='no' suits. */
                assert_false(domain_caps_enum_has(&dc->loader, "type", "pflash"));
                assert_true(domain_caps_enum_has(&dc->loader, "secure", "no"));
                validate_libvirt(domain_caps_xml(dc), "domaincaps.rng");
                dc = domain_caps_unref(dc);
        }
        /* isapc: no PCI bus, so neither AHCI nor a USB host controller. */
        m = qemu_caps_find_machine(c1, "isapc");
        if (m) {
                assert_int_equal(qemu_caps_domain_caps(c1, &host, "qemu", m, &dc), 0);
                assert_false(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "sata"));
                assert_false(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "usb"));
                assert_true(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "fdc"));
                dc = domain_caps_unref(dc);
        }
        m = qemu_caps_default_machine(c1);
        assert_true(strncmp(m->name, "pc-i440fx-", 10) == 0);
        host = facts(true);
        assert_int_equal(qemu_caps_domain_caps(c1, &host, kvm && c1->kvm_enabled ? "kvm" : "qemu", m, &dc), 0);
        assert_true(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_DISK], "bus", "ide"));
        assert_true(domain_caps_enum_has(&dc->devices[DOMAIN_CAPS_HOSTDEV], "pciBackend", "vfio"));
        if (kvm && c1->kvm_enabled) {
                /* Under KVM every enlightenment QEMU has a property for, not their sub-elements. */
                assert_true(domain_caps_enum_has(&dc->hyperv, "features", "relaxed"));
                assert_true(domain_caps_enum_has(&dc->hyperv, "features", "stimer"));
                assert_true(domain_caps_enum_has(&dc->hyperv, "features", "vendor_id"));
                assert_false(domain_caps_enum_has(&dc->hyperv, "features", "direct"));
        }
        validate_ours(domain_caps_xml(dc));
        validate_libvirt(domain_caps_xml(dc), "domaincaps.rng");
        dc = domain_caps_unref(dc);

        /* From memory: the same object. */
        assert_int_equal(qemu_caps_cache_get(cache, emu, on_ready, NULL, &c2, &e), 1);
        assert_ptr_equal(c1, c2);
        c2 = qemu_caps_unref(c2);
        /* From disk, in a new cache: read in the thread (the loop never parses the file), no probe (the
         * file is not written again). */
        assert_int_equal(qemu_caps_cache_new(event, cache_dir, probe_dir, kvm, NULL, &cache2), 0);
        {
                _cleanup_free_ char *pattern = NULL;

                assert_true(asprintf(&pattern, "%s/*.json", cache_dir) > 0);
                assert_int_equal(glob(pattern, 0, NULL, &files), 0);
                assert_int_equal(files.gl_pathc, 1);
                disk_file = files.gl_pathv[0];
        }
        assert_int_equal(stat(disk_file, &before), 0);
        ready_called = false;
        assert_int_equal(qemu_caps_cache_get(cache2, emu, on_ready, NULL, &c2, &e), 0);
        wait_ready(event);
        assert_int_equal(qemu_caps_cache_get(cache2, emu, on_ready, NULL, &c2, &e), 1);
        assert_int_equal(stat(disk_file, &after), 0);
        assert_true(before.st_mtim.tv_sec == after.st_mtim.tv_sec && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
        globfree(&files);
        assert_true(qemu_caps_key_equal(&c1->key, &c2->key));
        assert_int_equal(c2->n_machines, c1->n_machines);
        c2 = qemu_caps_unref(c2);
        cache2 = qemu_caps_cache_free(cache2);

        /* The binary changes (mtime): probed again, in memory and for a new cache. */
        assert_int_equal(utimensat(AT_FDCWD, emu, ts, 0), 0);
        assert_int_equal(qemu_caps_cache_get(cache, emu, on_ready, NULL, &c3, &e), 0);
        wait_ready(event);
        assert_int_equal(qemu_caps_cache_get(cache, emu, on_ready, NULL, &c3, &e), 1);
        assert_ptr_not_equal(c3, c1);
        assert_false(qemu_caps_key_equal(&c1->key, &c3->key));
        c3 = qemu_caps_unref(c3);

        /* Replaced by another file (a new inode, as a package upgrade does): probed again; waiting here. */
        cached = tmp_path("bin/qemu-new");
        copy_file(QEMU, cached);
        assert_int_equal(rename(cached, emu), 0);
        assert_int_equal(qemu_caps_cache_get(cache, emu, NULL, NULL, &c3, &e), 1);
        assert_false(ready_called);
        assert_int_equal(c3->n_machines, c1->n_machines);
        c3 = qemu_caps_unref(c3);

        /* A binary that is not QEMU fails the probe with a sentence, and the failure is remembered. */
        {
                _cleanup_free_ char *bad = tmp_path("bin/qemu-system-bad");
                assert_int_equal(write_file_atomic(bad, "#!/bin/sh\nexit 3\n", 17, 0755), 0);
                assert_true(qemu_caps_cache_get(cache, bad, NULL, NULL, &c3, &e) < 0);
                assert_int_equal(e.code, VB_ERROR_OPERATION_FAILED);
                assert_non_null(strstr(e.message, "qemu-system-bad"));
                vb_error_free(&e);
        }

        qemu_caps_unref(c1);
        qemu_caps_cache_free(cache);
        sd_event_unref(event);
}

static int setup(void **state) {
        char t[] = "/tmp/virtbus-test-domaincaps-XXXXXX";
        if (!mkdtemp(t))
                return -1;
        tmp = strdup(t);
        return tmp ? 0 : -1;
}

static int teardown(void **state) {
        char *argv[] = { (char *) "rm", (char *) "-rf", tmp, NULL };
        pid_t pid = fork();
        if (pid == 0) {
                execvp("rm", argv);
                _exit(127);
        }
        if (pid > 0)
                (void) waitpid(pid, NULL, 0);
        free(tmp);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tables),
                cmocka_unit_test(test_test_driver_set),
                cmocka_unit_test(test_checks),
                cmocka_unit_test(test_host_caps),
                cmocka_unit_test(test_qemu_probe_and_cache),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
