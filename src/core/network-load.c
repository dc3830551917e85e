/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Start-up of the network registry (saved definitions, active networks found again, the driver's
 * default networks, autostart) and the guest ports handed out by active networks. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/conf-util.h"
#include "core/network-internal.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"

static int load_one(NetworkDef *def, void *userdata) {
        NetworkRegistry *r = userdata;
        char uuid[37];
        Network *n;
        int k;

        network_def_get_uuid_string(def, uuid);
        if (network_registry_by_uuid(r, uuid) || network_registry_by_name(r, def->name)) {
                log_warning("A second saved network named '%s' (UUID %s), ignoring it.", def->name, uuid);
                network_def_free(def);
                return 0;
        }
        n = network_new(r, def);
        if (!n) {
                network_def_free(def);
                return -ENOMEM;
        }
        n->config = def;
        n->autostart = network_store_get_autostart(r->dir, uuid);
        k = network_registry_insert(r, n, false);
        if (k < 0)
                network_free(n);
        return k;
}

/* The guest ports of an active network, for a restarted virtbusd: "OWNER TYPE POOL-INDEX MAC" per line
 * in <runtime>/networks/<uuid>.ports. */
static char *ports_path(const NetworkRegistry *r, const Network *n) {
        char *p;
        return asprintf(&p, "%s/%s.ports", r->status_dir, n->uuid) < 0 ? NULL : p;
}

static void ports_save(NetworkRegistry *r, const Network *n) {
        _cleanup_free_ char *path = ports_path(r, n), *text = NULL;
        StrBuf b = STRBUF_NULL;
        int k;

        if (!path)
                return;
        if (n->n_ports == 0) {
                (void) unlink(path);
                return;
        }
        for (size_t i = 0; i < n->n_ports; i++) {
                char mac[18];

                conf_mac_format(n->ports[i].mac, mac);
                strbuf_appendf(&b, "%s %s %zd %s\n", n->ports[i].owner, network_actual_type_to_string(n->ports[i].actual.type),
                               n->ports[i].actual.pool_index, mac);
        }
        text = strbuf_steal(&b);
        k = text ? write_file_replace(path, text, strlen(text), 0600) : -ENOMEM; /* runtime state */
        if (k < 0)
                log_warning_errno(k, "Failed to write '%s', ignoring: %m", path);
}

static void ports_load(NetworkRegistry *r, Network *n) {
        _cleanup_free_ char *path = ports_path(r, n), *text = NULL;
        char *save = NULL;

        if (!path || read_full_file(path, 0, &text, NULL) < 0)
                return;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char owner[64], type[16], mac[32];
                long index;
                NetworkPort *p;

                if (sscanf(line, "%63s %15s %ld %31s", owner, type, &index, mac) != 4 ||
                    network_actual_type_from_string(type) < 0 ||
                    !GREEDY_REALLOC(n->ports, n->n_ports_allocated, n->n_ports + 1))
                        continue;
                if (index >= 0 && (!n->pool || (size_t) index >= n->pool->n_entries))
                        continue;
                p = &n->ports[n->n_ports];
                *p = (NetworkPort) {
                        .owner = strdup(owner),
                        .actual = { .type = network_actual_type_from_string(type), .pool_index = index },
                };
                if (!p->owner || conf_mac_parse(mac, p->mac) < 0) {
                        free(p->owner);
                        continue;
                }
                if (index >= 0)
                        n->pool->entries[index].connections++;
                n->n_ports++;
        }
        log_debug("Network '%s': %zu guest ports found again.", n->name, n->n_ports);
}

/* An active network left by the previous virtbusd: take it over if the backend still has it. */
static void reconnect_one(NetworkRegistry *r, const char *path) {
        _cleanup_(network_def_freep) NetworkDef *live = NULL;
        _cleanup_free_ char *xml = NULL;
        VbError e = VB_ERROR_NULL;
        char uuid[37];
        Network *n;
        int k;

        k = read_full_file(path, 0, &xml, NULL);
        if (k >= 0)
                k = network_def_parse_string(xml, 0, &live, &e);
        if (k < 0) {
                log_warning("Failed to read '%s' (%s), ignoring.", path, e.message ?: strerror(-k));
                vb_error_free(&e);
                return;
        }
        if (!r->backend->ops->is_running(r->backend, live)) {
                log_info("Network '%s' is no longer active.", live->name);
                /* What a stop cut short by a crash left behind (its dnsmasq, its firewall table). */
                (void) r->backend->ops->stop(r->backend, live, NULL);
                (void) unlink(path);
                return;
        }
        if (r->backend->ops->resume) {
                k = r->backend->ops->resume(r->backend, live, &e);
                if (k < 0) {
                        log_warning("Failed to complete network '%s' after a restart, ignoring: %s", live->name,
                                    e.message ?: strerror(-k));
                        vb_error_free(&e);
                }
        }
        network_def_get_uuid_string(live, uuid);
        n = network_registry_by_uuid(r, uuid);
        if (!n) {
                /* A transient network: its live definition is all there is. */
                n = network_new(r, live);
                if (!n)
                        return;
                if (network_registry_insert(r, n, false) < 0) {
                        network_free(n);
                        return;
                }
        }
        k = network_build_pool(live, &n->pool, &e);
        if (k < 0) {
                log_debug("No device pool for network '%s': %s", live->name, e.message ?: strerror(-k));
                vb_error_free(&e);
        }
        n->live = TAKE_PTR(live);
        ports_load(r, n);
        log_info("Network '%s' is active.", n->name);
}

static void reconnect_all(NetworkRegistry *r) {
        _cleanup_(closedirp) DIR *d = opendir(r->status_dir);
        struct dirent *de;

        while (d && (de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                size_t len = strlen(de->d_name);

                if (len != 40 || !streq(de->d_name + 36, ".xml"))
                        continue;
                if (asprintf(&path, "%s/%s", r->status_dir, de->d_name) < 0)
                        return;
                reconnect_one(r, path);
        }
}

static void seed_defaults(NetworkRegistry *r, const char * const *xmls, const char *marker) {
        if (!xmls || !marker || access(marker, F_OK) == 0)
                return;
        for (size_t i = 0; xmls[i]; i++) {
                VbError e = VB_ERROR_NULL;
                Network *n;
                int k;

                k = network_define(r, xmls[i], NULL, &n, NULL, &e);
                if (k >= 0)
                        k = network_set_autostart(r, n, true, &e);
                if (k < 0)
                        log_warning("Failed to set up a default network: %s", e.message ?: strerror(-k));
                vb_error_free(&e);
        }
        durable_flush(r->durable); /* the networks first: the marker says they exist */
        if (write_file_atomic(marker, "", 0, 0644) < 0)
                log_warning("Failed to write '%s', ignoring.", marker);
}

int network_registry_load(NetworkRegistry *r, const char * const *default_xmls, const char *seed_marker) {
        int k;

        k = network_store_load_all(r->dir, load_one, r);
        if (k < 0)
                return log_error_errno(k, "Failed to load saved networks from '%s': %m", r->dir);
        reconnect_all(r);
        seed_defaults(r, default_xmls, seed_marker);
        for (size_t i = 0; i < r->n_networks; i++) {
                Network *n = r->networks[i];
                VbError e = VB_ERROR_NULL;

                if (!n->autostart || network_is_active(n))
                        continue;
                k = network_start(r, n, &e);
                if (k < 0)
                        log_warning("Failed to autostart network '%s': %s", n->name, e.message ?: strerror(-k));
                else
                        log_info("Autostarted network '%s'.", n->name);
                vb_error_free(&e);
        }
        log_info("Loaded %zu networks.", r->n_networks);
        return 0;
}

/* Guest ports */

int network_port_acquire(NetworkRegistry *r, const char *network_name, const NetworkPortRequest *req,
                         const char *owner, const uint8_t mac[6], const NetworkPort **ret, VbError *reterr) {
        Network *n = network_registry_by_name(r, network_name);
        NetworkActual actual = { .pool_index = -1 };
        _cleanup_free_ char *o = NULL;
        NetworkPort *p;
        int k;

        if (!n)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_NETWORK, "No network named '%s'.", network_name);
        k = network_check_idle(n, reterr);
        if (k < 0)
                return k;
        if (!network_is_active(n))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' is not active.", network_name);
        k = network_resolve_port(n->live, n->pool, req, &actual, reterr);
        if (k < 0)
                return k;
        if (!(o = strdup(owner)) || !GREEDY_REALLOC(n->ports, n->n_ports_allocated, n->n_ports + 1)) {
                if (actual.pool_index >= 0 && n->pool)
                        network_pool_release(n->pool, (size_t) actual.pool_index);
                network_actual_done(&actual);
                return -ENOMEM;
        }
        p = &n->ports[n->n_ports++];
        *p = (NetworkPort) { .owner = TAKE_PTR(o), .actual = actual };
        memcpy(p->mac, mac, 6);
        ports_save(r, n);
        log_info("Domain %s connected to network '%s' (%s%s%s).", owner, n->name, network_actual_type_to_string(actual.type),
                 actual.dev ? " on " : "", strempty(actual.dev));
        *ret = p;
        return 0;
}

/* Releases the ports of owner (those with this MAC only, when mac is non-NULL). */
static void ports_release(NetworkRegistry *r, const char *owner, const uint8_t *mac) {
        for (size_t i = 0; i < r->n_networks; i++) {
                Network *n = r->networks[i];
                size_t before = n->n_ports;

                for (size_t j = n->n_ports; j > 0; j--) {
                        NetworkPort *p = &n->ports[j - 1];

                        if (!streq(p->owner, owner) || (mac && memcmp(p->mac, mac, 6) != 0))
                                continue;
                        if (p->actual.pool_index >= 0 && n->pool)
                                network_pool_release(n->pool, (size_t) p->actual.pool_index);
                        free(p->owner);
                        network_actual_done(&p->actual);
                        memmove(p, p + 1, (n->n_ports - j) * sizeof(NetworkPort));
                        n->n_ports--;
                }
                if (n->n_ports != before)
                        ports_save(r, n);
        }
}

void network_ports_release_owner(NetworkRegistry *r, const char *owner) {
        ports_release(r, owner, NULL);
}

void network_port_release(NetworkRegistry *r, const char *owner, const uint8_t mac[6]) {
        ports_release(r, owner, mac);
}

void network_ports_keep(NetworkRegistry *r, const char *owner,
                        bool (*keep)(const char *owner, const uint8_t mac[6], void *userdata), void *userdata) {
        for (size_t i = 0; i < r->n_networks; i++) {
                Network *n = r->networks[i];

                /* Each release changes the list: looked through again from the start. */
                for (size_t j = 0; j < n->n_ports;) {
                        uint8_t mac[6];

                        if (!streq(n->ports[j].owner, owner) || keep(owner, n->ports[j].mac, userdata)) {
                                j++;
                                continue;
                        }
                        memcpy(mac, n->ports[j].mac, 6);
                        log_info("Domain %s has no interface %02x:%02x:%02x:%02x:%02x:%02x any more: releasing its "
                                 "port of network '%s'.", owner, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
                                 n->name);
                        network_port_release(r, owner, mac);
                        j = 0;
                }
        }
}

void network_ports_prune(NetworkRegistry *r, bool (*is_running)(const char *owner, void *userdata), void *userdata) {
        for (size_t i = 0; i < r->n_networks; i++) {
                Network *n = r->networks[i];

                for (size_t j = n->n_ports; j > 0; j--) {
                        _cleanup_free_ char *owner = NULL;

                        if (j > n->n_ports || is_running(n->ports[j - 1].owner, userdata))
                                continue;
                        owner = strdup(n->ports[j - 1].owner);
                        if (!owner)
                                return;
                        log_info("Domain %s no longer runs: releasing its ports.", owner);
                        network_ports_release_owner(r, owner);
                }
        }
}
