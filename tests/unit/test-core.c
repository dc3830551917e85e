/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* core + the test driver, without D-Bus: registry, lifecycle state machine, persistence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/domain-access.h"
#include "core/manager.h"
#include "util/durable.h"
#include "util/fileio.h"
#include "util/log.h"

typedef struct Fixture {
        char dir[64];
        char config[96], state[96], runtime[96];
        sd_event *event;
        Manager *m;
        unsigned added, removed, changed;
        char last_changed[256];
} Fixture;

static void on_added(void *userdata, Domain *d) {
        ((Fixture *) userdata)->added++;
}

static void on_removed(void *userdata, Domain *d) {
        ((Fixture *) userdata)->removed++;
}

static void on_changed(void *userdata, Domain *d, const char * const *props) {
        Fixture *f = userdata;
        f->changed++;
        f->last_changed[0] = 0;
        for (; props && *props; props++) {
                strncat(f->last_changed, *props, sizeof f->last_changed - strlen(f->last_changed) - 2);
                strcat(f->last_changed, " ");
        }
}

static int fixture_open(Fixture *f) {
        ManagerConfig cfg = {
                .mode = MANAGER_SYSTEM,
                .driver = "test",
                .config_dir = f->config,
                .state_dir = f->state,
                .runtime_dir = f->runtime,
        };
        VbError e = VB_ERROR_NULL;
        int r;

        r = manager_new(&cfg, f->event, &f->m, &e);
        if (r < 0) {
                fprintf(stderr, "manager_new: %s\n", e.message);
                vb_error_free(&e);
                return r;
        }
        manager_set_events(f->m, &(ManagerEvents) {
                .domain_added = on_added,
                .domain_removed = on_removed,
                .domain_changed = on_changed,
                .userdata = f,
        });
        r = manager_load(f->m, &e);
        if (r < 0)
                fprintf(stderr, "manager_load: %s\n", e.message);
        vb_error_free(&e);
        return r;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        snprintf(f->dir, sizeof f->dir, "/tmp/vb-core-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->config, sizeof f->config, "%s/config", f->dir);
        snprintf(f->state, sizeof f->state, "%s/state", f->dir);
        snprintf(f->runtime, sizeof f->runtime, "%s/runtime", f->dir);
        assert_int_equal(sd_event_new(&f->event), 0);
        log_set_max_level(LOG_WARNING);
        assert_int_equal(fixture_open(f), 0);
        f->added = f->removed = f->changed = 0; /* the default host's "test" domain */
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        manager_free(f->m);
        sd_event_unref(f->event);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void fixture_restart(Fixture *f) {
        f->m = manager_free(f->m);
        assert_int_equal(fixture_open(f), 0);
}

static const char *domain_xml(const char *name, const char *uuid) {
        static char buf[1024];
        snprintf(buf, sizeof buf,
                 "<domain type='test'><name>%s</name>%s%s%s<memory unit='MiB'>512</memory><vcpu>2</vcpu>"
                 "<os><type arch='x86_64'>hvm</type></os><on_poweroff>destroy</on_poweroff></domain>",
                 name, uuid ? "<uuid>" : "", uuid ?: "", uuid ? "</uuid>" : "");
        return buf;
}

static Domain *define(Fixture *f, const char *name, const char *uuid) {
        VbError e = VB_ERROR_NULL;
        Domain *d = NULL;
        bool created;
        int r = manager_domain_define(f->m, domain_xml(name, uuid), &d, &created, &e);

        if (r < 0)
                fail_msg("define '%s': %s", name, e.message);
        return d;
}

static void test_default_host(void **state) {
        Fixture *f = *state;
        Domain *d = manager_domain_by_name(f->m, "test");

        /* libvirt's test:///default: one running domain "test". */
        assert_non_null(d);
        assert_int_equal(d->state, DOMAIN_RUNNING);
        assert_true(d->id > 0);
        assert_true(domain_is_persistent(d));
        assert_string_equal(d->uuid, "6695eb01-f6a4-8304-79aa-97f2502e193f");
        /* Still there, still running, same id after a restart of the service. */
        unsigned id = d->id;
        fixture_restart(f);
        d = manager_domain_by_name(f->m, "test");
        assert_non_null(d);
        assert_int_equal(d->state, DOMAIN_RUNNING);
        assert_int_equal(d->id, id);
}

static void test_define_and_conflicts(void **state) {
        Fixture *f = *state;
        VbError e = VB_ERROR_NULL;
        Domain *d, *d2;
        bool created;

        d = define(f, "web", "11111111-2222-3333-4444-555555555555");
        assert_int_equal(f->added, 1);
        assert_int_equal(d->state, DOMAIN_SHUTOFF);
        assert_ptr_equal(manager_domain_by_uuid(f->m, "11111111-2222-3333-4444-555555555555"), d);

        /* Same name, other UUID. */
        assert_int_equal(manager_domain_define(f->m, domain_xml("web", "11111111-2222-3333-4444-666666666666"), &d2,
                                               &created, &e),
                         -EEXIST);
        assert_int_equal(e.code, VB_ERROR_ALREADY_EXISTS);
        assert_non_null(strstr(e.message, "'web'"));
        vb_error_free(&e);
        /* Same UUID, other name. */
        assert_int_equal(manager_domain_define(f->m, domain_xml("db", "11111111-2222-3333-4444-555555555555"), &d2,
                                               &created, &e),
                         -EEXIST);
        vb_error_free(&e);
        /* Same name and UUID: a redefinition. */
        assert_int_equal(manager_domain_define(f->m, domain_xml("web", "11111111-2222-3333-4444-555555555555"), &d2,
                                               &created, &e),
                         0);
        assert_ptr_equal(d, d2);
        assert_false(created);
        /* Bad XML changes nothing. */
        assert_true(manager_domain_define(f->m, "<domain><name>x</name>", &d2, &created, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_INVALID_XML);
        vb_error_free(&e);
        assert_null(manager_domain_by_name(f->m, "x"));
}

/* Two devices on one guest PCI function are refused at define, as libvirt's qemu driver refuses them
 * (written differently: '0x05' and '5'); other functions of one slot, and 0000:00:00.0 (no address), are
 * not. */
static void test_define_pci_address_twice(void **state) {
        static const struct {
                const char *a, *b;
                bool refused;
        } cases[] = {
                { "bus='0x00' slot='0x05' function='0x0'", "bus='0' slot='5' function='0'", true },
                { "domain='0x0000' bus='0x01' slot='0x1f' function='0x7'", "bus='0x01' slot='037' function='7'", true },
                { "bus='0x00' slot='0x05' function='0x0'", "bus='0x00' slot='0x05' function='0x1'", false },
                { "bus='0x00' slot='0x05' function='0x0'", "bus='0x01' slot='0x05' function='0x0'", false },
                { "bus='0x00' slot='0x00' function='0x0'", "bus='0x00' slot='0x00' function='0x0'", false },
        };
        Fixture *f = *state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *xml = NULL;
                VbError e = VB_ERROR_NULL;
                Domain *d = NULL;
                bool created;
                int r;

                assert_true(asprintf(&xml,
                                     "<domain type='test'><name>pci%zu</name><memory unit='MiB'>512</memory>"
                                     "<os><type arch='x86_64'>hvm</type></os><devices>"
                                     "<disk type='file' device='disk'><source file='/var/lib/a.img'/>"
                                     "<target dev='vda' bus='virtio'/><address type='pci' %s/></disk>"
                                     "<interface type='user'><model type='virtio'/><address type='pci' %s/></interface>"
                                     "</devices></domain>",
                                     i, cases[i].a, cases[i].b) >= 0);
                r = manager_domain_define(f->m, xml, &d, &created, &e);
                if (!cases[i].refused) {
                        if (r < 0)
                                fail_msg("case %zu refused: %s", i, e.message);
                        continue;
                }
                if (r >= 0)
                        fail_msg("case %zu accepted", i);
                assert_int_equal(e.code, VB_ERROR_INVALID_XML);
                assert_non_null(strstr(e.message, "is given to two devices: device 1 (<disk>) and device 2 (<interface>)"));
                assert_null(manager_domain_by_name(f->m, "pci0"));
                vb_error_free(&e);
        }
}

static void run_until_stopped(Fixture *f, Domain *d) {
        for (int i = 0; i < 200 && domain_is_active(d); i++)
                assert_true(sd_event_run(f->event, 10 * 1000) >= 0);
}

static void test_lifecycle(void **state) {
        Fixture *f = *state;
        VbError e = VB_ERROR_NULL;
        Domain *d = define(f, "life", NULL);

        /* Not running: everything but Start is refused with InvalidState. */
        assert_int_equal(manager_domain_shutdown(f->m, d, NULL, NULL, &e), -EBUSY);
        assert_int_equal(e.code, VB_ERROR_INVALID_STATE);
        assert_string_equal(e.message, "Domain 'life' is not running");
        vb_error_free(&e);
        assert_true(manager_domain_suspend(f->m, d, NULL, NULL, &e) < 0);
        vb_error_free(&e);
        assert_true(manager_domain_destroy(f->m, d, &e) < 0);
        vb_error_free(&e);

        assert_int_equal(manager_domain_start(f->m, d, false, NULL, NULL, &e), 1);
        assert_int_equal(d->state, DOMAIN_RUNNING);
        assert_non_null(strstr(f->last_changed, "State"));
        assert_true(manager_domain_start(f->m, d, false, NULL, NULL, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_INVALID_STATE);
        vb_error_free(&e);

        assert_int_equal(manager_domain_suspend(f->m, d, NULL, NULL, &e), 1);
        assert_int_equal(d->state, DOMAIN_PAUSED);
        assert_true(manager_domain_suspend(f->m, d, NULL, NULL, &e) < 0);
        vb_error_free(&e);
        assert_int_equal(manager_domain_resume(f->m, d, NULL, NULL, &e), 1);
        assert_int_equal(d->state, DOMAIN_RUNNING);
        assert_int_equal(manager_domain_reboot(f->m, d, NULL, NULL, &e), 1);
        assert_int_equal(d->state, DOMAIN_RUNNING);
        assert_int_equal(manager_domain_reset(f->m, d, NULL, NULL, &e), 1);

        /* ACPI shutdown: the simulated guest powers off a little later. */
        assert_int_equal(manager_domain_shutdown(f->m, d, NULL, NULL, &e), 1);
        assert_int_equal(d->state, DOMAIN_SHUTDOWN);
        run_until_stopped(f, d);
        assert_int_equal(d->state, DOMAIN_SHUTOFF);
        assert_int_equal(d->id, 0);

        assert_int_equal(manager_domain_start(f->m, d, true, NULL, NULL, &e), 1);
        assert_int_equal(d->state, DOMAIN_PAUSED);
        assert_int_equal(manager_domain_destroy(f->m, d, &e), 0);
        assert_int_equal(d->state, DOMAIN_SHUTOFF);
}

static void test_transient(void **state) {
        Fixture *f = *state;
        VbError e = VB_ERROR_NULL;
        Domain *d;

        assert_int_equal(manager_domain_create(f->m, domain_xml("tmp", NULL), false, &d, &e), 1);
        assert_false(domain_is_persistent(d));
        assert_int_equal(d->state, DOMAIN_RUNNING);
        assert_true(manager_domain_set_autostart(f->m, d, true, &e) < 0);
        vb_error_free(&e);
        /* Survives a restart of the service: the hypervisor still runs it. */
        fixture_restart(f);
        d = manager_domain_by_name(f->m, "tmp");
        assert_non_null(d);
        assert_false(domain_is_persistent(d));
        f->removed = 0;
        assert_int_equal(manager_domain_destroy(f->m, d, &e), 0);
        assert_null(manager_domain_by_name(f->m, "tmp"));
        assert_int_equal(f->removed, 1);
}

static void test_persistence(void **state) {
        Fixture *f = *state;
        VbError e = VB_ERROR_NULL;
        Domain *d = define(f, "keep", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        char path[256];

        assert_int_equal(manager_domain_set_autostart(f->m, d, true, &e), 0);
        assert_int_equal(manager_domain_rename(f->m, d, "kept", &e), 0);
        fixture_restart(f);
        d = manager_domain_by_name(f->m, "kept");
        assert_non_null(d);
        assert_null(manager_domain_by_name(f->m, "keep"));
        assert_true(d->autostart);
        /* Autostarted at load. */
        assert_int_equal(d->state, DOMAIN_RUNNING);

        /* Undefine while running: goes on as transient, and its file is gone. */
        assert_int_equal(manager_domain_undefine(f->m, d, &e), 0);
        assert_false(domain_is_persistent(d));
        durable_flush(f->m->durable); /* the removal is committed in the store thread */
        snprintf(path, sizeof path, "%s/domains/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee.xml", f->config);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(manager_domain_destroy(f->m, d, &e), 0);
        assert_null(manager_domain_by_name(f->m, "kept"));
}

static void test_broken_and_torn_files(void **state) {
        Fixture *f = *state;
        char path[256], *contents = NULL;

        define(f, "good", "12345678-1234-1234-1234-123456789abc");
        /* A broken definition and the leftover of an interrupted atomic write. */
        snprintf(path, sizeof path, "%s/domains/00000000-0000-0000-0000-000000000001.xml", f->config);
        assert_int_equal(write_file_atomic(path, "<domain><name>half", 18, 0600), 0);
        snprintf(path, sizeof path, "%s/domains/12345678-1234-1234-1234-123456789abc.xml.Ab12Cd", f->config);
        assert_int_equal(write_file_atomic(path, "<dom", 4, 0600), 0);
        snprintf(path, sizeof path, "%s/domains/12345678-1234-1234-1234-123456789abd.xml.tmp~", f->config);
        assert_int_equal(write_file_atomic(path, "<domain", 7, 0600), 0);
        fixture_restart(f);
        /* The uncommitted one is gone; the broken one below stays. */
        assert_int_equal(access(path, F_OK), -1);
        assert_non_null(manager_domain_by_name(f->m, "good"));
        /* The broken file is kept as it was, never deleted. */
        snprintf(path, sizeof path, "%s/domains/00000000-0000-0000-0000-000000000001.xml", f->config);
        assert_int_equal(read_full_file(path, 0, &contents, NULL), 0);
        assert_string_equal(contents, "<domain><name>half");
        free(contents);
}

static void test_get_xml(void **state) {
        Fixture *f = *state;
        VbError e = VB_ERROR_NULL;
        Domain *d = define(f, "xml", "99999999-8888-7777-6666-555555555555");
        char *xml = NULL;

        assert_int_equal(manager_domain_get_xml(f->m, d, 0, &xml, &e), 0);
        assert_non_null(strstr(xml, "<name>xml</name>"));
        assert_null(strstr(xml, " id="));
        free(xml);
        assert_int_equal(manager_domain_start(f->m, d, false, NULL, NULL, &e), 1);
        assert_int_equal(manager_domain_get_xml(f->m, d, 0, &xml, &e), 0);
        assert_non_null(strstr(xml, " id="));
        free(xml);
        assert_int_equal(manager_domain_get_xml(f->m, d, DOMAIN_XML_INACTIVE, &xml, &e), 0);
        assert_null(strstr(xml, " id="));
        free(xml);
}

typedef struct DefineResult {
        int calls, r;
        Domain *d;
        bool created;
        char message[256];
} DefineResult;

static void on_defined(Manager *m, Domain *d, bool created, int r, const VbError *e, void *userdata) {
        DefineResult *res = userdata;
        res->calls++;
        res->r = r;
        res->d = d;
        res->created = created;
        snprintf(res->message, sizeof res->message, "%s", e && e->message ? e->message : "");
}

static DomainDef *parse(const char *xml) {
        DomainDef *def = NULL;
        assert_int_equal(domain_def_parse_string(xml, 0, &def, NULL), 0);
        return def;
}

/* Runs the loop until every one of res[0..n) has its answer (the commit is in a thread). */
static void run_until_defined(Fixture *f, DefineResult *res, size_t n) {
        for (int spins = 0; spins < 10000; spins++) {
                size_t answered = 0;
                for (size_t i = 0; i < n; i++)
                        answered += res[i].calls > 0;
                if (answered == n)
                        return;
                assert_true(sd_event_run(f->event, 100 * 1000) >= 0);
        }
        fail_msg("no answer to DefineDomain");
}

static void test_group_commit(void **state) {
        Fixture *f = *state;
        DefineResult res[21] = {};
        VbError e = VB_ERROR_NULL;
        char name[32], path[256];

        /* Nothing else for the loop to answer first (the store thread's earlier answers included). */
        durable_flush(f->m->durable);
        while (sd_event_run(f->event, 0) > 0)
                ;
        /* Twenty definitions queued before the loop runs: none is visible until the commit. */
        for (int i = 0; i < 20; i++) {
                snprintf(name, sizeof name, "batch-%d", i);
                assert_int_equal(manager_domain_define_async(f->m, parse(domain_xml(name, NULL)), NULL, on_defined, &res[i], &e), 0);
        }
        assert_null(manager_domain_by_name(f->m, "batch-0"));
        assert_int_equal(res[0].calls, 0);
        /* The first loop iteration hands them to the thread: still not visible, not answered. */
        assert_true(sd_event_run(f->event, 0) >= 0);
        assert_non_null(f->m->define_batch);
        assert_null(manager_domain_by_name(f->m, "batch-0"));
        /* One more arriving meanwhile waits for the next batch (at most one in flight). */
        assert_int_equal(manager_domain_define_async(f->m, parse(domain_xml("batch-20", NULL)), NULL, on_defined, &res[20], &e), 0);
        run_until_defined(f, res, 20);
        assert_int_equal(res[20].calls, 0);
        run_until_defined(f, res, 21);
        assert_true(res[20].created);
        for (int i = 0; i < 20; i++) {
                assert_int_equal(res[i].calls, 1);
                assert_int_equal(res[i].r, 0);
                assert_true(res[i].created);
                assert_non_null(res[i].d);
                snprintf(path, sizeof path, "%s/domains/%s.xml", f->config, res[i].d->uuid);
                assert_int_equal(access(path, F_OK), 0);
                strcat(path, ".tmp~");
                assert_int_equal(access(path, F_OK), -1);
        }
        assert_int_equal(f->added, 21);

        /* Refused at once: the name is taken. */
        assert_int_equal(manager_domain_define_async(f->m, parse(domain_xml("batch-3", "12121212-3434-5656-7878-909090909090")), NULL,
                                                     on_defined, &res[0], &e),
                         -EEXIST);
        vb_error_free(&e);

        /* The same domain twice in one batch: the first is committed before the second is taken. */
        memset(res, 0, sizeof res);
        assert_int_equal(manager_domain_define_async(f->m, parse(domain_xml("twice", "abababab-0000-0000-0000-000000000001")), NULL,
                                                     on_defined, &res[0], &e), 0);
        assert_int_equal(manager_domain_define_async(f->m, parse(domain_xml("twice", "abababab-0000-0000-0000-000000000001")), NULL,
                                                     on_defined, &res[1], &e), 0);
        run_until_defined(f, res, 2);
        assert_true(res[0].created);
        assert_false(res[1].created);
        assert_ptr_equal(res[0].d, res[1].d);

        /* Taken by another domain between check and commit: that caller gets the error, nothing is saved. */
        memset(res, 0, sizeof res);
        assert_int_equal(manager_domain_define_async(f->m, parse(domain_xml("late", "cdcdcdcd-0000-0000-0000-000000000001")), NULL,
                                                     on_defined, &res[0], &e), 0);
        define(f, "late", "cdcdcdcd-0000-0000-0000-000000000002");
        run_until_defined(f, res, 1);
        assert_int_equal(res[0].calls, 1);
        assert_int_equal(res[0].r, -EEXIST);
        assert_non_null(strstr(res[0].message, "'late'"));
        snprintf(path, sizeof path, "%s/domains/cdcdcdcd-0000-0000-0000-000000000001.xml", f->config);
        assert_int_equal(access(path, F_OK), -1);
        strcat(path, ".tmp~");
        assert_int_equal(access(path, F_OK), -1);

        /* A synchronous change while a batch is in flight waits for it: the registry and the files change
         * in the order the calls came. */
        memset(res, 0, sizeof res);
        assert_int_equal(manager_domain_define_async(f->m, parse(domain_xml("inflight", "efefefef-0000-0000-0000-000000000001")), NULL,
                                                     on_defined, &res[0], &e), 0);
        assert_true(sd_event_run(f->event, 0) >= 0);
        assert_non_null(f->m->define_batch);
        assert_int_equal(manager_domain_define(f->m, domain_xml("inflight", "efefefef-0000-0000-0000-000000000002"), &(Domain *) { NULL },
                                               &(bool) { false }, &e), -EEXIST);
        vb_error_free(&e);
        assert_int_equal(res[0].calls, 1);
        assert_int_equal(res[0].r, 0);
        assert_null(f->m->define_batch);
        assert_int_equal(manager_domain_undefine(f->m, res[0].d, &e), 0);
        durable_flush(f->m->durable); /* the removal is committed in the store thread */
        snprintf(path, sizeof path, "%s/domains/efefefef-0000-0000-0000-000000000001.xml", f->config);
        assert_int_equal(access(path, F_OK), -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_default_host, setup, teardown),
                cmocka_unit_test_setup_teardown(test_define_and_conflicts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_define_pci_address_twice, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transient, setup, teardown),
                cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broken_and_torn_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_get_xml, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
