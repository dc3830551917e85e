/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetDomainCapabilities and GetCapabilities over the bus, with the test driver (its fixed set) and with
 * the qemu driver and the real QEMU (a probe of the installed emulator and of a copy of it that the test
 * changes); the XML validates against libvirt's schemas (corpus/libvirt/schemas where tests/shared-dir.sh
 * says, read at test time) and ours; DefineDomain / AttachDevice refuse what the capabilities rule out. This host has no
 * VFIO (no /dev/vfio, no IOMMU groups), so the qemu driver refuses PCI passthrough here. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/relaxng.h>

#include "harness.h"
#include "tests/shared-dir.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define DOMAIN_INTERFACE "org.virtbus1.Domain"
#define ERR(name) "org.virtbus1.Error." name
#define QEMU "/usr/bin/qemu-system-x86_64"

static char *get_caps(sd_bus *bus, const char *emulator, const char *arch, const char *machine, const char *virttype) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, M, "GetDomainCapabilities", "sssst", emulator, arch, machine, virttype, UINT64_C(0));
        const char *xml;

        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        return strdup(xml);
}

static char *get_host_caps(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, "GetCapabilities", "");
        const char *xml;

        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        return strdup(xml);
}

static void validate(const char *xml, const char *schema_path) {
        xmlRelaxNGParserCtxtPtr pc;
        xmlRelaxNGPtr rng;
        xmlRelaxNGValidCtxtPtr vc;
        xmlDocPtr doc;

        assert_non_null(schema_path);
        if (access(schema_path, R_OK) < 0) {
                print_message("(%s is not there: not checked)\n", schema_path);
                return;
        }
        pc = xmlRelaxNGNewParserCtxt(schema_path);
        rng = xmlRelaxNGParse(pc);
        assert_non_null(rng);
        vc = xmlRelaxNGNewValidCtxt(rng);
        doc = xmlReadMemory(xml, (int) strlen(xml), "caps.xml", NULL, XML_PARSE_NONET);
        assert_non_null(doc);
        if (xmlRelaxNGValidateDoc(vc, doc) != 0)
                fail_msg("does not validate against %s:\n%s", schema_path, xml);
        xmlFreeDoc(doc);
        xmlRelaxNGFreeValidCtxt(vc);
        xmlRelaxNGFree(rng);
        xmlRelaxNGFreeParserCtxt(pc);
}

static void validate_domain_caps(const char *xml) {
        _cleanup_free_ char *ours = harness_source_path("data/schemas/domaincaps.rng"),
                            *libvirt = test_shared_path("corpus/libvirt/schemas/domaincaps.rng");
        validate(xml, ours);
        validate(xml, libvirt);
}

static void validate_host_caps(const char *xml) {
        _cleanup_free_ char *libvirt = test_shared_path("corpus/libvirt/schemas/capability.rng");
        validate(xml, libvirt);
}

static void assert_contains(const char *s, const char *part) {
        if (!strstr(s, part))
                fail_msg("'%s' not in:\n%s", part, s);
}

static void assert_lacks(const char *s, const char *part) {
        if (strstr(s, part))
                fail_msg("'%s' unexpectedly in:\n%s", part, s);
}

/* The <enum name='name'> element of xml's <element> child, as text (to free). */
static char *enum_of(const char *xml, const char *element, const char *name) {
        char open[64], en[64];
        const char *a, *b, *end;

        snprintf(open, sizeof open, "<%s supported=", element);
        snprintf(en, sizeof en, "<enum name='%s'", name);
        a = strstr(xml, open);
        assert_non_null(a);
        b = strstr(a, en);
        assert_non_null(b);
        end = strstr(b, "</enum>");
        if (!end || (strstr(b, "/>") && strstr(b, "/>") < strchr(b, '\n')))
                end = strchr(b, '\n');
        return strndup(b, (size_t) (end - b));
}

static char *domain_xml(const char *type, const char *name, const char *machine, const char *devices) {
        char *x;
        assert_true(asprintf(&x,
                             "<domain type='%s'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='%s'>hvm</type></os><devices>%s</devices></domain>",
                             type, name, machine, devices ?: "") >= 0);
        return x;
}

/* The test driver ------------------------------------------------------------------------------- */

static void test_defaults_and_aliases(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *dflt = NULL, *pc = NULL, *q35 = NULL, *i686 = NULL, *bus = NULL, *bus35 = NULL;

        dflt = get_caps(harness_bus_root(h), "", "", "", "");
        assert_contains(dflt, "<path>/usr/bin/virtbus-test-emulator</path>");
        assert_contains(dflt, "<domain>test</domain>");
        assert_contains(dflt, "<machine>pc-i440fx-test</machine>");
        assert_contains(dflt, "<arch>x86_64</arch>");
        validate_domain_caps(dflt);
        /* Open to every caller; the alias answers for the versioned machine. */
        pc = get_caps(harness_bus_as(h, HARNESS_USER_PLAIN), "", "x86_64", "pc", "test");
        assert_string_equal(pc, dflt);
        q35 = get_caps(harness_bus_as(h, HARNESS_USER_PLAIN), "/usr/bin/virtbus-test-emulator", "", "q35", "");
        assert_contains(q35, "<machine>pc-q35-test</machine>");
        assert_contains(q35, "<vcpu max='288'/>");
        validate_domain_caps(q35);
        bus = enum_of(pc, "disk", "bus");
        bus35 = enum_of(q35, "disk", "bus");
        assert_contains(bus, "<value>ide</value>");
        assert_lacks(bus35, "<value>ide</value>");
        i686 = get_caps(harness_bus_root(h), "", "i686", "", "");
        assert_contains(i686, "<arch>i686</arch>");
        validate_domain_caps(i686);
}

static void test_errors(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_as(h, HARNESS_USER_PLAIN);

        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "has no machine 'pc-9.9'; it has 'pc-i440fx-test' ('pc'), 'pc-q35-test' ('q35')",
                           M, "GetDomainCapabilities", "sssst", "", "", "pc-9.9", "", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "No emulator for arch 'aarch64'; the test driver runs 'x86_64' and 'i686'",
                           M, "GetDomainCapabilities", "sssst", "", "aarch64", "", "", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "Unknown virt type 'kvm'; the test driver runs 'test'",
                           M, "GetDomainCapabilities", "sssst", "", "", "", "kvm", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "No emulator '/usr/bin/qemu-kvm'; the test driver has '/usr/bin/virtbus-test-emulator'",
                           M, "GetDomainCapabilities", "sssst", "/usr/bin/qemu-kvm", "", "", "", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "Unknown flags", M, "GetDomainCapabilities", "sssst", "", "", "", "",
                           UINT64_C(4));
}

static void test_host_capabilities(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *xml = get_host_caps(harness_bus_as(h, HARNESS_USER_PLAIN));

        assert_contains(xml, "<capabilities>");
        assert_contains(xml, "<arch>x86_64</arch>");
        assert_contains(xml, "<cells num='");
        assert_contains(xml, "<emulator>/usr/bin/virtbus-test-emulator</emulator>");
        assert_contains(xml, "<machine canonical='pc-q35-test' maxCpus='288'>q35</machine>");
        assert_contains(xml, "<domain type='test'/>");
        validate_host_caps(xml);
}

static void test_refusals(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *ide35 = domain_xml("test", "caps-ide-q35", "q35",
                                                "<disk type='file'><source file='/a.img'/><target dev='hda' bus='ide'/></disk>"),
                            *ok35 = domain_xml("test", "caps-virtio-q35", "q35",
                                               "<disk type='file'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>"),
                            *unknown = domain_xml("test", "caps-unknown", "pc-0.1", NULL),
                            *sdl = domain_xml("test", "caps-sdl", "pc", "<graphics type='sdl'/>");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;

        harness_call_fails(bus, ERR("NotSupported"), "Disk 'hda' is on bus 'ide', which machine 'pc-q35-test'", M,
                           "DefineDomain", "st", ide35, UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "Domain 'caps-unknown' cannot run here: The emulator '/usr/bin/virtbus-test-emulator' has no machine 'pc-0.1'",
                           M, "DefineDomain", "st", unknown, UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "bus 'ide'", M, "CreateDomain", "st", ide35, UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "Graphics type 'sdl' is not available with '/usr/bin/virtbus-test-emulator' (it offers 'vnc', 'spice')",
                           M, "DefineDomain", "st", sdl, UINT64_C(0));
        /* The same disk may go on a virtio bus, and an IDE disk is refused when attached too. */
        reply = harness_call_ok(bus, M, "DefineDomain", "st", ok35, UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
        harness_call_fails(bus, ERR("NotSupported"), "Disk 'hdb' is on bus 'ide'", path, DOMAIN_INTERFACE, "AttachDevice",
                           "st", "<disk type='file'><source file='/b.img'/><target dev='hdb'/></disk>", UINT64_C(2));
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "AttachDevice", "st",
                                             "<disk type='file'><source file='/b.img'/><target dev='sdb' bus='sata'/></disk>",
                                             UINT64_C(2)));
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
}

/* The qemu driver -------------------------------------------------------------------------------- */

/* A copy of QEMU in dir/bin with the layout it finds its modules and data by (../lib, ../share). */
static char *copy_qemu(Harness *h) {
        char *emu, *cmd;
        int r;

        assert_true(asprintf(&emu, "%s/q/bin/qemu-system-x86_64", harness_dir(h)) >= 0);
        assert_true(asprintf(&cmd,
                             "set -e; d='%s/q'; mkdir -p \"$d/bin\" \"$d/lib/x86_64-linux-gnu\" \"$d/share\"; "
                             "chmod 755 \"$d\" \"$d/bin\"; cp %s \"$d/bin/\"; "
                             "ln -s /usr/lib/x86_64-linux-gnu/qemu \"$d/lib/x86_64-linux-gnu/qemu\"; "
                             "ln -s /usr/share/qemu \"$d/share/qemu\"",
                             harness_dir(h), QEMU) >= 0);
        r = system(cmd);
        free(cmd);
        assert_int_equal(r, 0);
        return emu;
}

/* The cache file (state dir, qemu/caps) of the emulator at path, as text (NULL if none). */
static char *cache_file_of(Harness *h, const char *emulator) {
        _cleanup_free_ char *dir = NULL, *key = NULL;
        DIR *d;
        struct dirent *de;
        char *found = NULL;

        assert_true(asprintf(&dir, "%s/qemu/caps", harness_state_dir(h)) >= 0);
        assert_true(asprintf(&key, "\"emulator\":\"%s\"", emulator) >= 0);
        d = opendir(dir);
        while (d && !found && (de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                char *text;

                if (de->d_name[0] == '.')
                        continue;
                assert_true(asprintf(&p, "%s/%s", dir, de->d_name) >= 0);
                text = harness_read_file(p);
                if (text && strstr(text, key))
                        found = text;
                else
                        free(text);
        }
        if (d)
                closedir(d);
        return found;
}

static void test_qemu_probe(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *dflt = NULL, *q35 = NULL, *tcg = NULL, *bus = NULL, *backend = NULL, *host = NULL;
        bool kvm = access("/dev/kvm", R_OK | W_OK) == 0;

        dflt = get_caps(harness_bus_as(h, HARNESS_USER_PLAIN), "", "", "", "");
        assert_contains(dflt, "<path>" QEMU "</path>");
        assert_contains(dflt, kvm ? "<domain>kvm</domain>" : "<domain>qemu</domain>");
        assert_contains(dflt, "<machine>pc-i440fx-");
        assert_contains(dflt, "<mode name='maximum' supported='yes'>");
        assert_contains(dflt, "<enum name='maximumMigratable'>");
        /* host-model: the closest named model, as QEMU's answers make it (qemu-cpu.c). */
        assert_contains(dflt, "<mode name='host-model' supported='yes'>");
        assert_contains(dflt, "<model fallback='forbid'>");
        assert_contains(dflt, kvm ? "<mode name='host-passthrough' supported='yes'>" : "<mode name='host-passthrough' supported='no'/>");
        assert_contains(dflt, "<model usable='");
        validate_domain_caps(dflt);
        /* Loaders are the firmware files that exist (Debian's ovmf). */
        if (access("/usr/share/OVMF/OVMF_CODE_4M.fd", R_OK) == 0)
                assert_contains(dflt, "<value>/usr/share/OVMF/OVMF_CODE_4M.fd</value>");
        /* No VFIO here: PCI passthrough is not offered. */
        backend = enum_of(dflt, "hostdev", "pciBackend");
        assert_lacks(backend, "vfio");
        q35 = get_caps(harness_bus_root(h), QEMU, "x86_64", "q35", "qemu");
        assert_contains(q35, "<domain>qemu</domain>");
        assert_contains(q35, "<machine>pc-q35-");
        assert_contains(q35, "<vcpu max='288'/>");
        bus = enum_of(q35, "disk", "bus");
        assert_lacks(bus, "<value>ide</value>");
        assert_contains(bus, "<value>sata</value>");
        validate_domain_caps(q35);
        host = get_host_caps(harness_bus_root(h));
        assert_contains(host, "<emulator>" QEMU "</emulator>");
        assert_contains(host, "<domain type='qemu'/>");
        assert_contains(host, ">pc</machine>");
        validate_host_caps(host);
        tcg = cache_file_of(h, QEMU);
        assert_non_null(tcg); /* kept on disk */
}

static void test_qemu_errors(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *fake = NULL;

        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "has no machine 'pc-9.9'; it has ", M, "GetDomainCapabilities",
                           "sssst", "", "", "pc-9.9", "", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "No emulator for arch 'sparc'; the emulators here are ", M,
                           "GetDomainCapabilities", "sssst", "", "sparc", "", "", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "Unknown virt type 'xen'", M, "GetDomainCapabilities",
                           "sssst", "", "", "", "xen", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "is not a QEMU system emulator", M, "GetDomainCapabilities",
                           "sssst", "/bin/sh", "", "", "", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "No emulator '/nonexistent/qemu-system-x86_64'", M,
                           "GetDomainCapabilities", "sssst", "/nonexistent/qemu-system-x86_64", "", "", "", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "runs arch 'x86_64', not 'i686'", M, "GetDomainCapabilities",
                           "sssst", QEMU, "i686", "", "", UINT64_C(0));
        /* A binary others may change is not run. */
        assert_true(asprintf(&fake, "%s/w/qemu-system-x86_64", harness_dir(h)) >= 0);
        {
                _cleanup_free_ char *cmd = NULL;
                assert_true(asprintf(&cmd, "mkdir -p %s/w && cp /bin/true %s && chmod 777 %s/w", harness_dir(h), fake,
                                     harness_dir(h)) >= 0);
                assert_int_equal(system(cmd), 0);
        }
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "may be changed by other users than root", M,
                           "GetDomainCapabilities", "sssst", fake, "", "", "", UINT64_C(0));
}

static void test_qemu_cache_invalidation(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *emu = copy_qemu(h), *first = NULL, *second = NULL, *third = NULL, *c1 = NULL, *c2 = NULL,
                            *c3 = NULL, *replacement = NULL;
        struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 1234567890 } };

        first = get_caps(harness_bus_as(h, HARNESS_USER_PLAIN), emu, "", "q35", "qemu");
        assert_contains(first, emu);
        validate_domain_caps(first);
        c1 = cache_file_of(h, emu);
        assert_non_null(c1);
        /* Touched: probed again (the cache file is rewritten with the new mtime). */
        assert_int_equal(utimensat(AT_FDCWD, emu, ts, 0), 0);
        second = get_caps(harness_bus_root(h), emu, "", "q35", "qemu");
        assert_string_equal(second, first);
        c2 = cache_file_of(h, emu);
        assert_non_null(c2);
        assert_string_not_equal(c1, c2);
        assert_contains(c2, "\"mtime\":1234567890000000000");
        /* Replaced by another file (new inode): probed again. */
        assert_true(asprintf(&replacement, "%s.new", emu) >= 0);
        {
                _cleanup_free_ char *cmd = NULL;
                assert_true(asprintf(&cmd, "cp %s %s && mv -f %s %s", QEMU, replacement, replacement, emu) >= 0);
                assert_int_equal(system(cmd), 0);
        }
        third = get_caps(harness_bus_root(h), emu, "", "q35", "qemu");
        assert_string_equal(third, first);
        c3 = cache_file_of(h, emu);
        assert_string_not_equal(c3, c2);
        assert_lacks(c3, "\"mtime\":1234567890000000000");
        /* After a restart the disk cache answers (same document). */
        assert_int_equal(harness_daemon_restart(h), 0);
        free(third);
        third = get_caps(harness_bus_root(h), emu, "", "q35", "qemu");
        assert_string_equal(third, first);
        free(c1);
        c1 = cache_file_of(h, emu);
        assert_string_equal(c1, c3);
}

static void test_qemu_refusals(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *pci = domain_xml("qemu", "caps-pci", "pc",
                                              "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
                                              "<address domain='0' bus='0x0b' slot='0' function='0'/></source></hostdev>"),
                            *ide35 = domain_xml("qemu", "caps-ide", "q35",
                                                "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>"),
                            *plain = domain_xml("qemu", "caps-plain", "pc", NULL);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;

        harness_call_fails(bus, ERR("NotSupported"), "PCI device '0000:0b:00.0' cannot be given to a domain here: PCI passthrough needs VFIO",
                           M, "DefineDomain", "st", pci, UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "Disk 'hdc' is on bus 'ide', which machine 'pc-q35-", M, "DefineDomain",
                           "st", ide35, UINT64_C(0));
        reply = harness_call_ok(bus, M, "DefineDomain", "st", plain, UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
        harness_call_fails(bus, ERR("NotSupported"), "needs VFIO", path, DOMAIN_INTERFACE, "AttachDevice", "st",
                           "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0' bus='0x0b' slot='0' function='1'/></source></interface>",
                           UINT64_C(2));
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
}

int main(void) {
        static const struct CMUnitTest test_driver[] = {
                cmocka_unit_test(test_defaults_and_aliases),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_host_capabilities),
                cmocka_unit_test(test_refusals),
        };
        static const struct CMUnitTest qemu_driver[] = {
                cmocka_unit_test(test_qemu_probe),
                cmocka_unit_test(test_qemu_errors),
                cmocka_unit_test(test_qemu_refusals),
                cmocka_unit_test(test_qemu_cache_invalidation),
        };
        int r;

        HARNESS_SKIP_UNLESS_ROOT();
        r = harness_run_group(test_driver, &(HarnessOptions) {});
        if (access(QEMU, X_OK) < 0) {
                fprintf(stderr, "test-capabilities: qemu-system-x86_64 is not installed (scripts/bootstrap): qemu part skipped\n");
                return r;
        }
        r += harness_run_group(qemu_driver, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
        return r ? 1 : 0;
}
