/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/network-conf.h"
#include "conf/network-resolve.h"
#include "drivers/network-backend.h"
#include "util/error.h"
#include "util/hashmap.h"

/* The registry of virtual networks: definitions (persistent ones saved as <config>/networks/<uuid>.xml,
 * written atomically; autostart links in <config>/networks/autostart/), their state, their device
 * pools and the guest ports handed out. What a network does on the host is up to the backend
 * (drivers/network-backend.h): simulated with the test driver, real with the qemu driver.
 *
 * An active network also leaves <runtime>/networks/<uuid>.xml (its live definition), so that a
 * restarted virtbusd finds it again when the backend says it is still there. */

typedef struct NetworkRegistry NetworkRegistry;

/* A guest interface connected to a network. The links for it (tap, macvtap) are the hypervisor
 * driver's: it gets the resolved interface (bridge=, type='direct', type='hostdev'). */
typedef struct NetworkPort {
        char *owner;    /* the domain's UUID */
        uint8_t mac[6];
        NetworkActual actual;
} NetworkPort;

typedef struct Network {
        NetworkRegistry *registry;
        char uuid[37];
        char *name;
        NetworkDef *config; /* the saved definition; NULL for a transient network */
        NetworkDef *live;   /* the running definition; NULL when inactive */
        bool autostart;
        NetworkPool *pool;  /* while active: forward devices / VFs with their usage */
        NetworkPort *ports;
        size_t n_ports, n_ports_allocated;
        const char *busy; /* "starting", "stopping": a worker thread is doing the host's steps */
} Network;

typedef struct NetworkEvents {
        void (*added)(void *userdata, Network *n);
        void (*removed)(void *userdata, Network *n); /* before it is freed */
        /* properties: NULL-terminated names of org.virtbus1.Network properties that changed. */
        void (*changed)(void *userdata, Network *n, const char * const *properties);
        void *userdata;
} NetworkEvents;

struct NetworkRegistry {
        char *dir;        /* <config>/networks */
        char *status_dir; /* <runtime>/networks: live definitions of active networks */
        VbNetworkBackend *backend;
        struct Durable *durable; /* the saved definitions' changes (util/durable.h; NULL: synced at once) */
        struct sd_event *event;  /* for worker (NULL: starts and stops run where they are called) */
        struct Worker *worker;   /* the host's steps of Start and Stop; started on first use */
        bool freeing;            /* network_registry_free(): jobs finishing now answer nobody */
        bool stopping;           /* network_registry_stop(): no new job; jobs not started yet never start */
        unsigned n_jobs;         /* submitted, not yet done */
        struct NetworkJob *creating; /* CreateNetwork's networks being started, not in the registry yet */
        NetworkEvents events;
        Hashmap *by_uuid, *by_name;
        Network **networks; /* in order of definition */
        size_t n_networks, n_networks_allocated;
};

/* backend: "simulated", "host" or NULL (by driver: simulated for "test", host otherwise). */
int network_registry_new(const char *config_dir, const char *runtime_dir, const char *backend, const char *driver,
                         NetworkRegistry **ret, VbError *reterr);
NetworkRegistry *network_registry_free(NetworkRegistry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(NetworkRegistry *, network_registry_free);
void network_registry_set_events(NetworkRegistry *r, const NetworkEvents *events);

/* Loads saved definitions, finds active networks again, defines the driver's default networks once (on
 * a fresh state: seed_marker does not exist yet; they are autostarted) and starts autostart ones. */
int network_registry_load(NetworkRegistry *r, const char * const *default_xmls, const char *seed_marker);

Network *network_registry_by_uuid(const NetworkRegistry *r, const char *uuid);
Network *network_registry_by_name(const NetworkRegistry *r, const char *name);

bool network_is_active(const Network *n);
bool network_is_persistent(const Network *n);
/* The live definition while active, else the saved one. */
const NetworkDef *network_current_def(const Network *n);
const char *network_forward_mode_name(const Network *n); /* "none" for isolated */

/* Who defines a network (core/network-access.c): callers other than root may not give a definition that
 * takes over host interfaces, routes or files (AccessDenied). NULL: the service itself. */
typedef struct NetworkCaller {
        uid_t uid;
        bool host_files;   /* polkit allowed org.virtbus1.network.host-files */
        char *denied_path; /* out, with AccessDenied: the host path uid may not read (to ask polkit about); to free */
} NetworkCaller;

int network_define(NetworkRegistry *r, const char *xml, NetworkCaller *caller, Network **ret, bool *ret_created,
                   VbError *reterr);
/* core/network-access.c: refuses (AccessDenied) what caller may not ask of the host, and sets def's
 * access_uid from caller (never from the XML). NULL caller: the service. The bus layer asks it first, to
 * let polkit lift the one refusal it may (caller->denied_path); define and create ask it again. */
int network_access_check(NetworkRegistry *r, NetworkDef *def, NetworkCaller *caller, VbError *reterr);
/* The same with a parsed definition, which they take (also on failure). */
int network_define_def(NetworkRegistry *r, NetworkDef *def, NetworkCaller *caller, Network **ret, bool *ret_created,
                       VbError *reterr);
/* CreateNetwork: a transient network started as network_start_async() does; it joins the registry
 * (announced) once started, and done gets it (NULL on failure). 0 when handed over, < 0 at once. Its name,
 * UUID and bridge are taken meanwhile. */
typedef void (*NetworkCreateDone)(Network *n, int r, const VbError *e, void *userdata);
int network_create_def(NetworkRegistry *r, NetworkDef *def, NetworkCaller *caller, NetworkCreateDone done,
                       void *userdata, VbError *reterr);
int network_start(NetworkRegistry *r, Network *n, VbError *reterr);
/* Refused (InvalidState) while guests use it. A transient network goes away. */
int network_stop(NetworkRegistry *r, Network *n, VbError *reterr);
/* The same with the backend's steps (bridge, nftables, dnsmasq: child processes waited for, netlink round
 * trips) in a worker thread, off the event loop: 0 when handed over (done is called on the event loop
 * once the network is up, or down and gone if transient), < 0 at once. Meanwhile the network answers
 * DeviceBusy to Start, Stop, Undefine and guest ports; nothing is half-applied when the backend fails
 * (it undoes its own steps, as before). Without r->event they run at once (done called before return). */
typedef void (*NetworkDone)(int r, const VbError *e, void *userdata);
int network_start_async(NetworkRegistry *r, Network *n, NetworkDone done, void *userdata, VbError *reterr);
int network_stop_async(NetworkRegistry *r, Network *n, NetworkDone done, void *userdata, VbError *reterr);
/* virtbusd is stopping: new starts and stops are refused, those not yet taken by the thread are answered
 * without running; those running go on (their children are bounded: host/child-wait.h). */
void network_registry_stop(NetworkRegistry *r);
/* Starts or stops (of any network) submitted and not yet answered. */
unsigned network_registry_jobs(const NetworkRegistry *r);
/* DeviceBusy while a start or stop of n is in a thread. */
int network_check_idle(const Network *n, VbError *reterr);
/* Active: becomes transient; inactive: goes away. */
int network_undefine(NetworkRegistry *r, Network *n, VbError *reterr);
int network_set_autostart(NetworkRegistry *r, Network *n, bool autostart, VbError *reterr);

#define NETWORK_XML_INACTIVE (1u << 0)
int network_get_xml(NetworkRegistry *r, Network *n, unsigned flags, char **ret, VbError *reterr);
int network_get_leases(NetworkRegistry *r, Network *n, const char *mac, HostDhcpLease **ret, size_t *ret_n,
                       VbError *reterr);
/* The host's neighbour table entries of these MACs; NotSupported where the backend has no host. */
int network_registry_neighbours(NetworkRegistry *r, const uint8_t (*macs)[6], size_t n_macs, HostNeighbour **ret,
                                size_t *ret_n, VbError *reterr);

/* Connects a guest interface (owner: the domain's UUID) to the active network named network_name:
 * resolves it (network_resolve_port) and takes a pool entry.
 * *ret is the port, owned by the network until released. */
int network_port_acquire(NetworkRegistry *r, const char *network_name, const NetworkPortRequest *req,
                         const char *owner, const uint8_t mac[6], const NetworkPort **ret, VbError *reterr);
/* Releases every port of owner on every network (the domain stopped). */
void network_ports_release_owner(NetworkRegistry *r, const char *owner);
/* Releases the port of owner's interface with this MAC (a NIC hot-unplugged). */
void network_port_release(NetworkRegistry *r, const char *owner, const uint8_t mac[6]);
/* After a restart of virtbusd the ports of active networks are read back from <runtime>/networks/
 * <uuid>.ports (with their pool entries taken again); this releases those whose owner is_running()
 * says no longer runs. */
void network_ports_prune(NetworkRegistry *r, bool (*is_running)(const char *owner, void *userdata), void *userdata);
/* Releases the ports of owner for which keep() says no (an interface the domain no longer has). */
void network_ports_keep(NetworkRegistry *r, const char *owner,
                        bool (*keep)(const char *owner, const uint8_t mac[6], void *userdata), void *userdata);
