/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "test" backend: a simulated hypervisor and host, deterministic and needing no root.
 *
 * Each running guest is a record with an id, a state and its live definition, mirrored into
 * <runtime>/test-driver/<uuid>.{xml,state} so that a restarted virtbusd finds its guests still running,
 * as it would find QEMU processes. Guests act like real ones: an ACPI shutdown request is answered after
 * a short delay (the guest OS powering off) and then follows <on_poweroff>; a reboot follows
 * <on_reboot>. Hot-unplug is acknowledged by the guest after a short delay too.
 *
 * Tests make a guest misbehave with an element of our own in the domain's <metadata>:
 *   <metadata>
 *     <test:hotplug xmlns:test='urn:virtbus:test-driver'>
 *       <test:unplug answer='refuse' reason='the guest is busy'/>  (ack (default), refuse or ignore)
 *       <test:unplug alias='net1' answer='ignore'/>                (for one device; wins over the above)
 *       <test:unplug alias='net2' delay-ms='1500'/>                (answers late: default 20 ms)
 *       <test:plug alias='hostdev0' answer='refuse'/>              (hot-plug: ack or refuse)
 *     </test:hotplug>
 *   </metadata>
 * "ignore" is a guest that never answers, like QEMU with no OS running. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"
#include "conf/domain-access.h"
#include "conf/domain-devices.h"
#include "drivers/driver.h"
#include "drivers/test-driver-caps.h"
#include "drivers/test-driver-console.h"
#include "conf/snapshot-conf.h"
#include "drivers/test-driver-snapshot.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/log.h"

/* How long the simulated guest OS takes to power off after an ACPI request. */
#define TEST_GUEST_SHUTDOWN_USEC (20 * 1000)
/* How long the simulated guest OS takes to answer a hot-unplug request. */
#define TEST_GUEST_UNPLUG_USEC (20 * 1000)
#define TEST_DRIVER_NS "urn:virtbus:test-driver"

typedef struct TestDriver TestDriver;
typedef struct TestUnplug TestUnplug;

typedef struct TestGuest {
        TestDriver *t;
        char uuid[37];
        unsigned id;
        DomainState state;
        DomainDef *live;
        sd_event_source *shutdown_timer;
        TestUnplug *unplugs; /* hot-unplug requests the guest has yet to answer */
        /* Simulated statistics: how long the guest ran (not paused) in ns, up to running_since (CLOCK_MONOTONIC
         * usec, 0 while not running). */
        uint64_t run_ns, running_since;
        TestConsole *consoles; /* open console sessions (test-driver-console.c) */
} TestGuest;

struct TestDriver {
        VbDriver *drv;
        char *dir;
        Hashmap *guests;
        unsigned next_id;
        TestSaveHost save; /* simulated saved state (test-driver-snapshot.c) */
};

/* The host's one domain out of the box, as with libvirt's test:///default. */
static const char default_domain_xml[] =
        "<domain type='test'>\n"
        "  <name>test</name>\n"
        "  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n"
        "  <memory unit='KiB'>8388608</memory>\n"
        "  <currentMemory unit='KiB'>2097152</currentMemory>\n"
        "  <vcpu>2</vcpu>\n"
        "  <os>\n"
        "    <type arch='x86_64'>hvm</type>\n"
        "    <boot dev='hd'/>\n"
        "  </os>\n"
        "  <on_poweroff>destroy</on_poweroff>\n"
        "  <on_reboot>restart</on_reboot>\n"
        "  <on_crash>destroy</on_crash>\n"
        "  <devices>\n"
        "  </devices>\n"
        "</domain>\n";

static const char * const default_domains[] = { default_domain_xml, NULL };

/* The host's NAT network, as on a fresh libvirt host. Its Start/Stop is simulated (the test driver
 * uses the simulated network backend and never touches the host). */
static const char default_network_xml[] =
        "<network>\n"
        "  <name>default</name>\n"
        "  <uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid>\n"
        "  <forward mode='nat'/>\n"
        "  <bridge name='virbr0' stp='on' delay='0'/>\n"
        "  <ip address='192.168.122.1' netmask='255.255.255.0'>\n"
        "    <dhcp>\n"
        "      <range start='192.168.122.2' end='192.168.122.254'/>\n"
        "    </dhcp>\n"
        "  </ip>\n"
        "</network>\n";

static const char * const default_networks[] = { default_network_xml, NULL };

static const char * const *test_default_networks(VbDriver *drv) {
        return default_networks;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static TestDriver *priv(VbDriver *drv) {
        return drv->priv;
}

static void guest_free_unplugs(TestGuest *g);

static TestGuest *guest_free(TestGuest *g) {
        if (!g)
                return NULL;
        guest_free_unplugs(g);
        test_console_close_all(&g->consoles);
        sd_event_source_disable_unref(g->shutdown_timer);
        domain_def_free(g->live);
        free(g);
        return NULL;
}

static int guest_path(TestDriver *t, const char *uuid, const char *suffix, char **ret) {
        return asprintf(ret, "%s/%s.%s", t->dir, uuid, suffix) < 0 ? -ENOMEM : 0;
}

/* Mirrors the guest into the runtime directory. */
static int guest_save(TestDriver *t, TestGuest *g) {
        _cleanup_free_ char *xml = NULL, *path = NULL, *state = NULL;
        int r;

        r = domain_def_format(g->live, DOMAIN_FORMAT_SECURE, &xml);
        if (r < 0)
                return r;
        r = guest_path(t, g->uuid, "xml", &path);
        if (r < 0)
                return r;
        /* Runtime state, as QEMU's (qemu-process.c): atomic, no fsync on the event loop. */
        r = write_file_replace(path, xml, strlen(xml), 0600);
        if (r < 0)
                return r;
        free(path);
        path = NULL;
        r = guest_path(t, g->uuid, "state", &path);
        if (r < 0)
                return r;
        if (asprintf(&state, "%u %s\n", g->id, domain_state_to_string(g->state)) < 0)
                return -ENOMEM;
        return write_file_replace(path, state, strlen(state), 0600);
}

static void guest_forget(TestDriver *t, TestGuest *g) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        if (guest_path(t, g->uuid, "xml", &a) >= 0)
                (void) unlink(a);
        if (guest_path(t, g->uuid, "state", &b) >= 0)
                (void) unlink(b);
        hashmap_remove(t->guests, g->uuid);
        guest_free(g);
}

static int guest_begin_shutdown(TestDriver *t, TestGuest *g);

static int guest_load(TestDriver *t, const char *uuid) {
        _cleanup_free_ char *xml_path = NULL, *state_path = NULL, *xml = NULL, *state = NULL;
        char state_name[32];
        TestGuest *g;
        int r;

        if (guest_path(t, uuid, "xml", &xml_path) < 0 || guest_path(t, uuid, "state", &state_path) < 0)
                return -ENOMEM;
        r = read_full_file(xml_path, 0, &xml, NULL);
        if (r >= 0)
                r = read_full_file(state_path, 0, &state, NULL);
        if (r < 0)
                return r;
        g = new0(TestGuest, 1);
        if (!g)
                return -ENOMEM;
        g->t = t;
        snprintf(g->uuid, sizeof g->uuid, "%s", uuid);
        if (sscanf(state, "%u %31s", &g->id, state_name) != 2 ||
            (g->state = domain_state_from_string(state_name)) < 0) {
                guest_free(g);
                return -EBADMSG;
        }
        r = domain_def_parse_string(xml, 0, &g->live, NULL);
        if (r < 0 || hashmap_put(t->guests, g->uuid, g) < 0) {
                guest_free(g);
                return r < 0 ? r : -EEXIST;
        }
        if (g->id >= t->next_id)
                t->next_id = g->id + 1;
        if (g->state != DOMAIN_PAUSED)
                g->running_since = now_usec();
        /* A guest that was powering off when virtbusd stopped goes on doing so. */
        if (g->state == DOMAIN_SHUTDOWN) {
                g->state = DOMAIN_RUNNING;
                (void) guest_begin_shutdown(t, g);
        }
        return 0;
}

static int test_open(VbDriver *drv, const VbDriverConfig *cfg, VbError *reterr) {
        TestDriver *t = priv(drv);
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int r;

        t->drv = drv;
        t->next_id = 1;
        t->guests = hashmap_new();
        if (!t->guests || asprintf(&t->dir, "%s/test-driver", cfg->runtime_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(t->dir, 0700);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %s", t->dir,
                                    strerror(-r));
        d = opendir(t->dir);
        if (!d)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to open '%s': %m", t->dir);
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                char uuid[37];

                if (n != 36 + 6 || !streq(de->d_name + 36, ".state"))
                        continue;
                snprintf(uuid, sizeof uuid, "%.36s", de->d_name);
                r = guest_load(t, uuid);
                if (r < 0)
                        log_warning_errno(r, "Failed to load simulated guest %s, ignoring: %m", uuid);
        }
        return 0;
}

TestSaveHost *test_driver_save_host(VbDriver *drv) {
        return &priv(drv)->save;
}

static void test_close(VbDriver *drv) {
        TestDriver *t = priv(drv);
        TestGuest *g;

        test_save_host_close(&t->save);
        /* The simulated guests keep "running": their records stay in the runtime directory. */
        for (size_t i = 0; hashmap_iterate(t->guests, &i, (void **) &g, NULL);)
                guest_free(g);
        hashmap_free(t->guests);
        free(t->dir);
}

static const char * const *test_default_domains(VbDriver *drv) {
        return default_domains;
}

static int info_of(TestGuest *g, VbDriverDomainInfo *ret) {
        return vb_driver_domain_info_set(ret, g->uuid, g->id, g->state, g->live);
}

static int describe_guest(void *g, VbDriverDomainInfo *ret) {
        int r = info_of(g, ret);
        return r < 0 ? r : 1;
}

static int test_list_running(VbDriver *drv, VbDriverDomainInfo **ret, size_t *ret_n, VbError *reterr) {
        return vb_driver_list_running_from(priv(drv)->guests, describe_guest, ret, ret_n);
}

static TestGuest *find_guest(TestDriver *t, const char *uuid, VbError *reterr) {
        TestGuest *g = hashmap_get(t->guests, uuid);
        if (!g)
                vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain %s is not running", uuid);
        return g;
}

/* The simulated hypervisor answers at once: every op that may wait returns 1 (done now). */
static int test_start(VbDriver *drv, const DomainDef *def, const DomainAccess *access, bool paused,
                      VbDriverStartDone done, void *userdata, VbDriverDomainInfo *ret, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g;
        int r;

        if (hashmap_get(t->guests, domain_def_uuid(def).s))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is already running",
                                    domain_def_get_name(def));
        g = new0(TestGuest, 1);
        if (!g)
                return -ENOMEM;
        g->t = t;
        snprintf(g->uuid, sizeof g->uuid, "%s", domain_def_uuid(def).s);
        g->id = t->next_id;
        g->state = paused ? DOMAIN_PAUSED : DOMAIN_RUNNING;
        g->running_since = paused ? 0 : now_usec();
        r = domain_def_copy(def, &g->live);
        if (r >= 0)
                domain_def_set_id(g->live, g->id);
        if (r >= 0) /* Every device of a running guest has an alias and, on PCI, an address. */
                r = domain_def_assign_device_names(g->live, reterr);
        if (r >= 0)
                r = guest_save(t, g);
        if (r >= 0)
                r = info_of(g, ret);
        if (r >= 0)
                r = hashmap_put(t->guests, g->uuid, g);
        if (r < 0) {
                guest_forget(t, g);
                vb_driver_domain_info_done(ret);
                return r == -ENOMEM || vb_error_is_set(reterr)
                               ? r
                               : vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to start: %s",
                                              strerror(-r));
        }
        t->next_id++;
        return 1;
}

static int test_destroy(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);

        if (!g)
                return -EBUSY;
        guest_forget(t, g);
        return 1;
}

static void guest_set_state(TestDriver *t, TestGuest *g, DomainState state) {
        if (g->running_since > 0 && state == DOMAIN_PAUSED) {
                g->run_ns += (now_usec() - g->running_since) * 1000;
                g->running_since = 0;
        } else if (g->running_since == 0 && state != DOMAIN_PAUSED)
                g->running_since = now_usec();
        g->state = state;
        (void) guest_save(t, g);
}

/* The guest powered off (or rebooted, with restart as the action): follow the lifecycle action. */
static void guest_lifecycle(TestDriver *t, TestGuest *g, DomainLifecycleEvent event) {
        const VbDriverEvents *ev = &t->drv->cfg.events;
        DomainLifecycleAction action = domain_def_get_lifecycle(g->live, event);
        char uuid[37];

        snprintf(uuid, sizeof uuid, "%s", g->uuid);
        switch (action) {
        case DOMAIN_LIFECYCLE_RESTART:
        case DOMAIN_LIFECYCLE_RENAME_RESTART:
                guest_set_state(t, g, DOMAIN_RUNNING);
                ev->domain_state_changed(ev->userdata, uuid, DOMAIN_RUNNING);
                break;
        case DOMAIN_LIFECYCLE_PRESERVE:
                guest_set_state(t, g, DOMAIN_PAUSED);
                ev->domain_state_changed(ev->userdata, uuid, DOMAIN_PAUSED);
                break;
        default:
                guest_forget(t, g);
                ev->domain_stopped(ev->userdata, uuid, DOMAIN_STOP_SHUTDOWN);
                break;
        }
}

static int on_guest_powered_off(sd_event_source *s, uint64_t usec, void *userdata) {
        TestGuest *g = userdata;

        g->shutdown_timer = sd_event_source_disable_unref(g->shutdown_timer);
        guest_lifecycle(g->t, g, DOMAIN_LIFECYCLE_ON_POWEROFF);
        return 0;
}

static int guest_begin_shutdown(TestDriver *t, TestGuest *g) {
        int r;

        if (g->shutdown_timer)
                return 0;
        r = sd_event_add_time_relative(t->drv->cfg.event, &g->shutdown_timer, CLOCK_MONOTONIC,
                                       TEST_GUEST_SHUTDOWN_USEC, 0, on_guest_powered_off, g);
        if (r < 0)
                return r;
        guest_set_state(t, g, DOMAIN_SHUTDOWN);
        return 0;
}

static int test_shutdown(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);
        int r;

        if (!g)
                return -EBUSY;
        r = guest_begin_shutdown(t, g);
        return r < 0 ? r : 1;
}

static int test_reboot(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);

        if (!g)
                return -EBUSY;
        guest_lifecycle(t, g, DOMAIN_LIFECYCLE_ON_REBOOT);
        return 1;
}

static int test_reset(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        TestDriver *t = priv(drv);
        return find_guest(t, uuid, reterr) ? 1 : -EBUSY;
}

static int set_paused(VbDriver *drv, const char *uuid, bool paused, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);

        if (!g)
                return -EBUSY;
        guest_set_state(t, g, paused ? DOMAIN_PAUSED : DOMAIN_RUNNING);
        return 1;
}

static int test_suspend(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        return set_paused(drv, uuid, true, reterr);
}

static int test_resume(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        return set_paused(drv, uuid, false, reterr);
}

/* live becomes the guest's live definition (the old one freed), saved as the simulated guest's state. */
static void guest_set_live(TestDriver *t, TestGuest *g, DomainDef *live, const char *uuid) {
        int r;

        domain_def_free(g->live);
        g->live = live;
        r = guest_save(t, g);
        if (r < 0)
                log_warning_errno(r, "Failed to save the simulated guest %s, ignoring: %m", uuid);
}

int test_driver_adopt_overlays(VbDriver *drv, const char *uuid, const SnapshotDef *snap, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);
        DomainDef *live = NULL;
        int r;

        if (!g)
                return -ESRCH;
        r = snapshot_def_apply_overlays(snap, g->live, &live);
        if (r < 0)
                return r;
        guest_set_live(t, g, live, uuid);
        return 0;
}

int test_driver_drop_overlays(VbDriver *drv, const char *uuid, const SnapshotDef *snap, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);
        DomainDef *live = NULL;
        const char *disk = NULL;
        int r;

        if (!g)
                return -ESRCH;
        r = snapshot_def_drop_overlays(snap, g->live, &live, &disk);
        if (r == -EBUSY)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Disk '%s' of the simulated guest does not run on "
                                    "the overlay of snapshot '%s'", disk, snap->name);
        if (r < 0)
                return r;
        guest_set_live(t, g, live, uuid);
        return 0;
}

/* A simulated migration out (test-driver-snapshot.c sends the state): at its end the guest is paused, as
 * QEMU's is after its last pass. */
typedef struct TestMigrateOut {
        VbDriver *drv;
        char uuid[37];
        VbDriverMigrationStats stats;
        VbDriverOpDone done;
        void *userdata;
} TestMigrateOut;

static void on_migrate_stats(const VbMigrationStats *st, void *userdata) {
        TestMigrateOut *o = userdata;

        if (o->stats)
                o->stats(st, o->userdata);
}

static void on_migrated_out(int r, const VbError *e, void *userdata) {
        TestMigrateOut *o = userdata;

        if (r >= 0 && set_paused(o->drv, o->uuid, true, NULL) >= 0 && o->drv->cfg.events.domain_state_changed)
                o->drv->cfg.events.domain_state_changed(o->drv->cfg.events.userdata, o->uuid, DOMAIN_PAUSED);
        o->done(r, e, o->userdata);
        free(o);
}

static int test_migrate_out_op(VbDriver *drv, const char *uuid, int fd, const VbMigrateParams *params,
                               VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr) {
        TestMigrateOut *o;
        int r;

        if (!find_guest(priv(drv), uuid, reterr))
                return -ESRCH;
        o = new0(TestMigrateOut, 1);
        if (!o)
                return -ENOMEM;
        *o = (TestMigrateOut) { .drv = drv, .stats = stats, .done = done, .userdata = userdata };
        snprintf(o->uuid, sizeof o->uuid, "%s", uuid);
        r = test_migrate_out(drv, uuid, fd, params, on_migrate_stats, on_migrated_out, o, reterr);
        if (r < 0)
                free(o);
        return r;
}

static int test_get_live(VbDriver *drv, const char *uuid, DomainDef **ret, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);

        if (!g)
                return -EBUSY;
        return domain_def_copy(g->live, ret);
}

/* Hotplug ---------------------------------------------------------------------------------------- */

struct TestUnplug {
        TestGuest *g;
        char *alias;
        char *reason; /* non-NULL: the guest refuses */
        sd_event_source *timer;
        TestUnplug *next;
};

static void unplug_free(TestUnplug *u) {
        sd_event_source_disable_unref(u->timer);
        free(u->alias);
        free(u->reason);
        free(u);
}

static void guest_free_unplugs(TestGuest *g) {
        while (g->unplugs) {
                TestUnplug *u = g->unplugs;
                g->unplugs = u->next;
                unplug_free(u);
        }
}

/* What the guest answers to a plug or unplug of alias, from the <test:hotplug> metadata: "ack", "refuse"
 * or "ignore"; *ret_reason is the refusal's reason, *ret_delay_usec (may be NULL) how long it takes. */
static const char *guest_answer(TestGuest *g, const char *what, const char *alias, const char **ret_reason,
                                uint64_t *ret_delay_usec) {
        const ConfNode *hp = domain_def_get_metadata(g->live, TEST_DRIVER_NS, "hotplug"), *best = NULL;

        for (size_t i = 0; hp && i < hp->n_children; i++) {
                const ConfNode *c = hp->children[i];
                const char *a = conf_node_attr(c, "alias");

                if (!streq(c->name, what) || !streq_ptr(c->ns_href, TEST_DRIVER_NS) || (a && !streq_ptr(a, alias)))
                        continue;
                if (!best || (a && !conf_node_attr(best, "alias")))
                        best = c;
        }
        *ret_reason = best ? conf_node_attr(best, "reason") : NULL;
        if (ret_delay_usec) {
                const char *ms = best ? conf_node_attr(best, "delay-ms") : NULL;
                *ret_delay_usec = ms ? strtoull(ms, NULL, 10) * 1000 : TEST_GUEST_UNPLUG_USEC;
        }
        return best && conf_node_attr(best, "answer") ? conf_node_attr(best, "answer") : "ack";
}

static int attach_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                         VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);
        const char *reason;
        DeviceDef *copy = NULL;
        int r;

        if (!g)
                return -EBUSY;
        if (streq(guest_answer(g, "plug", dev->alias, &reason, NULL), "refuse"))
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "The guest refused device '%s': %s",
                                    strempty(dev->alias), reason ?: "refused by the test driver");
        if (domain_def_find_alias(g->live, dev->alias) >= 0)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "The guest already has a device '%s'",
                                    dev->alias);
        r = device_def_copy(dev, &copy);
        if (r >= 0)
                r = domain_def_add_device(g->live, copy);
        if (r < 0)
                return r;
        r = guest_save(t, g);
        if (r < 0) {
                domain_def_remove_device(g->live, g->live->n_devices - 1);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to record the device: %s",
                                    strerror(-r));
        }
        return 0;
}

static int on_guest_unplug_answer(sd_event_source *s, uint64_t usec, void *userdata) {
        TestUnplug *u = userdata;
        TestGuest *g = u->g;
        TestDriver *t = g->t;
        const VbDriverEvents *ev = &t->drv->cfg.events;
        _cleanup_free_ char *alias = TAKE_PTR(u->alias), *reason = TAKE_PTR(u->reason);
        char uuid[37];
        ssize_t i;

        for (TestUnplug **p = &g->unplugs; *p; p = &(*p)->next)
                if (*p == u) {
                        *p = u->next;
                        break;
                }
        unplug_free(u);
        snprintf(uuid, sizeof uuid, "%s", g->uuid);
        if (reason) {
                if (ev->device_removal_failed)
                        ev->device_removal_failed(ev->userdata, uuid, alias, reason);
                return 0;
        }
        i = domain_def_find_alias(g->live, alias);
        if (i >= 0) {
                domain_def_remove_device(g->live, (size_t) i);
                (void) guest_save(t, g);
        }
        if (ev->device_removed)
                ev->device_removed(ev->userdata, uuid, alias);
        return 0;
}

static int detach_device(VbDriver *drv, const char *uuid, const char *alias, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);
        const char *answer, *reason;
        uint64_t delay;
        TestUnplug *u;
        int r;

        if (!g)
                return -EBUSY;
        if (domain_def_find_alias(g->live, alias) < 0)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "The guest has no device '%s'", alias);
        for (u = g->unplugs; u; u = u->next)
                if (streq(u->alias, alias))
                        return 0; /* Asked already; the answer is on its way. */
        answer = guest_answer(g, "unplug", alias, &reason, &delay);
        if (streq(answer, "ignore"))
                return 0;
        u = new0(TestUnplug, 1);
        if (!u)
                return -ENOMEM;
        u->g = g;
        u->alias = strdup(alias);
        if (streq(answer, "refuse"))
                u->reason = strdup(reason ?: "the guest refused to release the device");
        if (!u->alias || (streq(answer, "refuse") && !u->reason)) {
                unplug_free(u);
                return -ENOMEM;
        }
        r = sd_event_add_time_relative(t->drv->cfg.event, &u->timer, CLOCK_MONOTONIC, delay,
                                       1, /* accuracy: 0 would mean up to 250 ms late */
                                       on_guest_unplug_answer, u);
        if (r < 0) {
                unplug_free(u);
                return r;
        }
        u->next = g->unplugs;
        g->unplugs = u;
        return 0;
}

static int update_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                         VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);
        DeviceDef *copy = NULL, *old;
        ssize_t i;
        int r;

        if (!g)
                return -EBUSY;
        if (dev->alias)
                i = domain_def_find_alias(g->live, dev->alias);
        else { /* graphics have no alias: found by type */
                size_t k;
                i = domain_def_find_device(g->live, dev, DEVICE_MATCH_IDENTITY, &k, NULL) < 0 ? -ENOENT : (ssize_t) k;
        }
        if (i < 0)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "The guest has no device '%s'",
                                    strempty(dev->alias));
        r = device_def_copy(dev, &copy);
        if (r < 0)
                return r;
        old = g->live->devices[i];
        g->live->devices[i] = copy;
        g->live->serial = domain_def_new_serial();
        r = guest_save(t, g);
        if (r < 0) {
                g->live->devices[i] = old;
                device_def_free(copy);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to record the device: %s",
                                    strerror(-r));
        }
        device_def_free(old);
        return 0;
}

/* Statistics ------------------------------------------------------------------------------------- */

/* Plausible and moving: the guest keeps half of each vCPU busy while it runs, reads and writes its disks
 * and talks on its interfaces at a steady pace; paused, nothing moves. */
#define MIN_U64(a, b) ((a) < (b) ? (a) : (b))

static uint64_t guest_run_ns(const TestGuest *g) {
        return g->run_ns + (g->running_since > 0 ? (now_usec() - g->running_since) * 1000 : 0);
}

static void guest_stats_cpu(const TestGuest *g, uint64_t groups, VbStats *s) {
        uint64_t ns = guest_run_ns(g), vcpus = domain_def_get_current_vcpus(g->live);
        uint64_t busy = ns / 2 * vcpus;

        if (groups & VB_STATS_GROUP_CPU) {
                vb_stats_add_ullong(s, busy + busy / 10, "cpu.time"); /* the emulator's own work on top */
                vb_stats_add_ullong(s, busy / 10 * 8, "cpu.user");
                vb_stats_add_ullong(s, busy / 10 * 3, "cpu.system");
        }
        if (groups & VB_STATS_GROUP_BALLOON) {
                uint64_t max = g->live->memory_kib, cur = g->live->current_memory_kib ?: max;
                vb_stats_add_ullong(s, cur, "balloon.current");
                vb_stats_add_ullong(s, max, "balloon.maximum");
                vb_stats_add_ullong(s, cur / 2 + 16384, "balloon.rss");
        }
        if (groups & VB_STATS_GROUP_VCPU) {
                vb_stats_add_uint(s, (uint32_t) vcpus, "vcpu.current");
                vb_stats_add_uint(s, domain_def_get_vcpus(g->live) ?: 1, "vcpu.maximum");
                for (uint64_t i = 0; i < vcpus; i++) {
                        vb_stats_add_int(s, 1 /* VIR_VCPU_RUNNING */, "vcpu.%" PRIu64 ".state", i);
                        vb_stats_add_ullong(s, ns / 2, "vcpu.%" PRIu64 ".time", i);
                }
        }
}

static void guest_stats_devices(const TestGuest *g, uint64_t groups, VbStats *s) {
        uint64_t ms = guest_run_ns(g) / 1000000;
        unsigned n_net = 0, n_block = 0;

        for (size_t i = 0; i < g->live->n_devices; i++) {
                const DeviceDef *dev = g->live->devices[i];

                if (dev->kind == DEVICE_INTERFACE && (groups & VB_STATS_GROUP_INTERFACE)) {
                        unsigned n = n_net++;
                        const char *name = device_interface_get_target_dev(dev);
                        char vnet[32];

                        snprintf(vnet, sizeof vnet, "vnet%u", n);
                        vb_stats_add_string(s, name ?: vnet, "net.%u.name", n);
                        /* 1.5 kB/s in 10 packets in, half of that out; no errors, a drop now and then. */
                        vb_stats_add_ullong(s, ms * 3 / 2, "net.%u.rx.bytes", n);
                        vb_stats_add_ullong(s, ms / 100, "net.%u.rx.pkts", n);
                        vb_stats_add_ullong(s, 0, "net.%u.rx.errs", n);
                        vb_stats_add_ullong(s, ms / 60000, "net.%u.rx.drop", n);
                        vb_stats_add_ullong(s, ms * 3 / 4, "net.%u.tx.bytes", n);
                        vb_stats_add_ullong(s, ms / 200, "net.%u.tx.pkts", n);
                        vb_stats_add_ullong(s, 0, "net.%u.tx.errs", n);
                        vb_stats_add_ullong(s, 0, "net.%u.tx.drop", n);
                } else if (dev->kind == DEVICE_DISK && (groups & VB_STATS_GROUP_BLOCK)) {
                        unsigned n = n_block++;
                        const uint64_t capacity = UINT64_C(8) << 30;

                        vb_stats_add_string(s, device_disk_get_target(dev), "block.%u.name", n);
                        vb_stats_add_string(s, device_disk_get_source(dev), "block.%u.path", n);
                        /* 4 KiB reads at 20/s, 4 KiB writes at 5/s, a flush a second. */
                        vb_stats_add_ullong(s, ms / 50, "block.%u.rd.reqs", n);
                        vb_stats_add_ullong(s, ms / 50 * 4096, "block.%u.rd.bytes", n);
                        vb_stats_add_ullong(s, ms / 50 * 100000, "block.%u.rd.times", n);
                        vb_stats_add_ullong(s, ms / 200, "block.%u.wr.reqs", n);
                        vb_stats_add_ullong(s, ms / 200 * 4096, "block.%u.wr.bytes", n);
                        vb_stats_add_ullong(s, ms / 200 * 300000, "block.%u.wr.times", n);
                        vb_stats_add_ullong(s, ms / 1000, "block.%u.fl.reqs", n);
                        vb_stats_add_ullong(s, ms / 1000 * 1000000, "block.%u.fl.times", n);
                        vb_stats_add_ullong(s, MIN_U64(capacity, (UINT64_C(1) << 30) + ms / 200 * 4096),
                                            "block.%u.allocation", n);
                        vb_stats_add_ullong(s, capacity, "block.%u.capacity", n);
                        vb_stats_add_ullong(s, capacity, "block.%u.physical", n);
                }
        }
        /* The counts lead their group in libvirt's order; appended last here, which a{sv} does not mind. */
        if (groups & VB_STATS_GROUP_INTERFACE)
                vb_stats_add_uint(s, n_net, "net.count");
        if (groups & VB_STATS_GROUP_BLOCK)
                vb_stats_add_uint(s, n_block, "block.count");
}

static int test_get_stats(VbDriver *drv, const char *uuid, uint64_t groups, VbDriverStatsDone done, void *userdata,
                          VbStats **ret, VbError *reterr) {
        TestGuest *g = find_guest(priv(drv), uuid, reterr);
        _cleanup_(vb_stats_freep) VbStats *s = vb_stats_new();

        if (!g)
                return -EBUSY;
        if (!s)
                return -ENOMEM;
        guest_stats_cpu(g, groups, s);
        guest_stats_devices(g, groups, s);
        if (vb_stats_failed(s))
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 1;
}

static int set_memory(VbDriver *drv, const char *uuid, uint64_t kib, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);
        uint64_t old;
        int r;

        if (!g)
                return -EBUSY;
        old = g->live->current_memory_kib;
        g->live->current_memory_kib = kib;
        g->live->serial = domain_def_new_serial();
        r = guest_save(t, g);
        if (r < 0) {
                g->live->current_memory_kib = old;
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to record the memory: %s", strerror(-r));
        }
        return 0;
}

static int test_set_vcpus(VbDriver *drv, const char *uuid, uint32_t count, VbDriverDone done, void *userdata,
                          VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);
        uint32_t old;
        int r;

        if (!g)
                return -EBUSY;
        old = g->live->vcpus_current;
        g->live->vcpus_current = count >= g->live->vcpus ? 0 : count;
        g->live->serial = domain_def_new_serial();
        r = guest_save(t, g);
        if (r < 0) {
                g->live->vcpus_current = old;
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to record the vCPUs: %s", strerror(-r));
        }
        return 1;
}

/* The simulated guest has an agent that always answers, with fixed information. */
static int test_guest_info(VbDriver *drv, const char *uuid, uint64_t types, VbDriverInfoDone done, void *userdata,
                           VbStats **ret, VbError *reterr) {
        TestGuest *g = find_guest(priv(drv), uuid, reterr);
        VbStats *s;

        if (!g)
                return -EBUSY;
        s = vb_stats_new();
        if (!s)
                return -ENOMEM;
        if (types & 1) {
                vb_stats_add_uint(s, 1, "user.count");
                vb_stats_add_string(s, "test", "user.0.name");
                vb_stats_add_ullong(s, 1700000000000ULL, "user.0.login-time");
        }
        if (types & 2) {
                vb_stats_add_string(s, "virtbus-test", "os.id");
                vb_stats_add_string(s, "virtbus test guest", "os.name");
                vb_stats_add_string(s, "virtbus test guest 1.0", "os.pretty-name");
                vb_stats_add_string(s, "1.0", "os.version-id");
                vb_stats_add_string(s, "x86_64", "os.machine");
        }
        if (types & 4) {
                vb_stats_add_string(s, "UTC", "timezone.name");
                vb_stats_add_int(s, 0, "timezone.offset");
        }
        if (types & 8)
                vb_stats_add_string(s, domain_def_get_name(g->live), "hostname");
        if (types & 16) {
                vb_stats_add_uint(s, 1, "fs.count");
                vb_stats_add_string(s, "/", "fs.0.mountpoint");
                vb_stats_add_string(s, "vda1", "fs.0.name");
                vb_stats_add_string(s, "ext4", "fs.0.fstype");
                vb_stats_add_ullong(s, 10737418240ULL, "fs.0.total-bytes");
                vb_stats_add_ullong(s, 2147483648ULL, "fs.0.used-bytes");
        }
        if (vb_stats_failed(s)) {
                vb_stats_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 1;
}

static int test_agent_shutdown(VbDriver *drv, const char *uuid, bool reboot, VbDriverDone done, void *userdata,
                               VbError *reterr) {
        int r = reboot ? test_reboot(drv, uuid, NULL, NULL, reterr) : test_shutdown(drv, uuid, NULL, NULL, reterr);
        return r < 0 ? r : 1;
}

static bool test_agent_connected(VbDriver *drv, const char *uuid) {
        return hashmap_get(priv(drv)->guests, uuid) != NULL;
}

/* The simulated agent lists each interface of the live definition as the guest's ethN, with its MAC, an
 * IPv4 address 192.0.2.(10 + N)/24 (TEST-NET-1) and an IPv6 one 2001:db8::(10 + N)/64 (documentation). */
static int test_agent_interfaces(VbDriver *drv, const char *uuid, VbDriverAddressesDone done, void *userdata,
                                 DomainIfAddresses **ret, size_t *ret_n, VbError *reterr) {
        TestGuest *g = find_guest(priv(drv), uuid, reterr);
        DomainIfAddresses *l;
        size_t n = 0;
        int r = 0;

        if (!g)
                return -EBUSY;
        l = new0(DomainIfAddresses, g->live->n_devices ?: 1);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < g->live->n_devices; i++) {
                const DeviceDef *dev = g->live->devices[i];
                char ip4[32], ip6[48];

                if (dev->kind != DEVICE_INTERFACE || !device_interface_get_mac(dev, l[n].mac_bytes))
                        continue;
                conf_mac_format(l[n].mac_bytes, l[n].mac);
                if (asprintf(&l[n].name, "eth%zu", n) < 0) {
                        l[n].name = NULL;
                        r = -ENOMEM;
                        break;
                }
                snprintf(ip4, sizeof ip4, "192.0.2.%zu", 10 + n);
                snprintf(ip6, sizeof ip6, "2001:db8::%zx", 10 + n);
                r = domain_if_addresses_add(&l[n], 4, ip4, 24);
                if (r >= 0)
                        r = domain_if_addresses_add(&l[n], 6, ip6, 64);
                n++;
        }
        if (r < 0) {
                domain_if_addresses_free(l, n);
                return r;
        }
        *ret = l;
        *ret_n = n;
        return 1;
}

/* The simulated console is there at once: done is called before this returns. */
static int test_open_console(VbDriver *drv, const char *uuid, const DomainAccess *access, const char *device,
                             bool force, VbDriverFdDone done, void *userdata, VbError *reterr) {
        TestDriver *t = priv(drv);
        TestGuest *g = find_guest(t, uuid, reterr);
        int fd = -1, r;

        if (!g)
                return -ESRCH;
        r = test_console_open(drv->cfg.event, &g->consoles, g->live, device, force, &fd, reterr);
        if (r < 0)
                return r;
        done(0, fd, NULL, userdata);
        return 0;
}

static int test_open_graphics(VbDriver *drv, const char *uuid, unsigned index, bool skip_auth,
                              VbDriverFdDone done, void *userdata, VbError *reterr) {
        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                            "The test driver simulates no display: OpenGraphics needs the qemu driver");
}

static int test_screenshot(VbDriver *drv, const char *uuid, unsigned screen, VbDriverScreenshotDone done,
                           void *userdata, VbError *reterr) {
        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                            "The test driver simulates no display: Screenshot needs the qemu driver");
}

/* The simulated guest answers hot-plug and the balloon at once (driver.h: 1, done now; detach: 1 gone,
 * 2 asked). */
static int test_attach_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                              VbDriverDone done, void *userdata, VbError *reterr) {
        int r = attach_device(drv, uuid, dev, access, reterr);
        return r < 0 ? r : 1;
}

static int test_detach_device(VbDriver *drv, const char *uuid, const char *alias, VbDriverDone done, void *userdata,
                              VbError *reterr) {
        int r = detach_device(drv, uuid, alias, reterr);
        return r < 0 ? r : r > 0 ? 1 : 2;
}

static int test_update_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                              VbDriverDone done, void *userdata, VbError *reterr) {
        int r = update_device(drv, uuid, dev, access, reterr);
        return r < 0 ? r : 1;
}

static int test_set_memory(VbDriver *drv, const char *uuid, uint64_t kib, VbDriverDone done, void *userdata,
                           VbError *reterr) {
        int r = set_memory(drv, uuid, kib, reterr);
        return r < 0 ? r : 1;
}

const VbDriverOps vb_test_driver_ops = {
        .name = "test",
        .priv_size = sizeof(TestDriver),
        .open = test_open,
        .close = test_close,
        .default_domains = test_default_domains,
        .default_networks = test_default_networks,
        .domain_list_running = test_list_running,
        .domain_start = test_start,
        .domain_destroy = test_destroy,
        .domain_shutdown = test_shutdown,
        .domain_reboot = test_reboot,
        .domain_reset = test_reset,
        .domain_suspend = test_suspend,
        .domain_resume = test_resume,
        .domain_get_live = test_get_live,
        .domain_attach_device = test_attach_device,
        .domain_detach_device = test_detach_device,
        .domain_update_device = test_update_device,
        .domain_open_console = test_open_console,
        .domain_open_graphics = test_open_graphics,
        .domain_screenshot = test_screenshot,
        .domain_capabilities = test_domain_capabilities,
        .capabilities = test_capabilities,
        .domain_get_stats = test_get_stats,
        .domain_set_memory = test_set_memory,
        .domain_set_vcpus = test_set_vcpus,
        .domain_guest_info = test_guest_info,
        .domain_agent_shutdown = test_agent_shutdown,
        .domain_agent_connected = test_agent_connected,
        .domain_agent_interfaces = test_agent_interfaces,
        .domain_snapshot_create = test_snapshot_create,
        .domain_snapshot_revert = test_snapshot_revert,
        .domain_snapshot_delete = test_snapshot_delete,
        .domain_save_state = test_save_state,
        .domain_expect_incoming = test_expect_incoming,
        .domain_migrate_out = test_migrate_out_op,
        .domain_migrate_cancel = test_migrate_cancel,
        .domain_load_state = test_load_state,
};
