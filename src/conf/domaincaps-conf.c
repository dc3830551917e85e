/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain capabilities: the typed document and its small helpers. */
#include <stdlib.h>
#include <string.h>

#include "conf/domaincaps-conf.h"
#include "util/strbuf.h"

static const char * const domain_caps_device_table[_DOMAIN_CAPS_DEVICE_MAX] = {
        [DOMAIN_CAPS_DISK] = "disk",
        [DOMAIN_CAPS_GRAPHICS] = "graphics",
        [DOMAIN_CAPS_VIDEO] = "video",
        [DOMAIN_CAPS_HOSTDEV] = "hostdev",
        [DOMAIN_CAPS_RNG] = "rng",
        [DOMAIN_CAPS_FILESYSTEM] = "filesystem",
        [DOMAIN_CAPS_TPM] = "tpm",
        [DOMAIN_CAPS_REDIRDEV] = "redirdev",
        [DOMAIN_CAPS_CHANNEL] = "channel",
        [DOMAIN_CAPS_CRYPTO] = "crypto",
        [DOMAIN_CAPS_INTERFACE] = "interface",
        [DOMAIN_CAPS_PANIC] = "panic",
};
DEFINE_STRING_TABLE_LOOKUP(domain_caps_device, DomainCapsDevice);

static const char * const domain_caps_feature_table[_DOMAIN_CAPS_FEATURE_MAX] = {
        [DOMAIN_CAPS_FEATURE_GIC] = "gic",
        [DOMAIN_CAPS_FEATURE_VMCOREINFO] = "vmcoreinfo",
        [DOMAIN_CAPS_FEATURE_GENID] = "genid",
        [DOMAIN_CAPS_FEATURE_BACKING_STORE_INPUT] = "backingStoreInput",
        [DOMAIN_CAPS_FEATURE_BACKUP] = "backup",
        [DOMAIN_CAPS_FEATURE_ASYNC_TEARDOWN] = "async-teardown",
        [DOMAIN_CAPS_FEATURE_PS2] = "ps2",
        [DOMAIN_CAPS_FEATURE_SEV] = "sev",
        [DOMAIN_CAPS_FEATURE_SGX] = "sgx",
        [DOMAIN_CAPS_FEATURE_LAUNCH_SECURITY] = "launchSecurity",
};
DEFINE_STRING_TABLE_LOOKUP(domain_caps_feature, DomainCapsFeature);

static const char * const domain_caps_usable_table[_DOMAIN_CAPS_USABLE_MAX] = {
        [DOMAIN_CAPS_USABLE_YES] = "yes",
        [DOMAIN_CAPS_USABLE_NO] = "no",
        [DOMAIN_CAPS_USABLE_UNKNOWN] = "unknown",
};
DEFINE_STRING_TABLE_LOOKUP(domain_caps_usable, DomainCapsUsable);

DomainCaps *domain_caps_new(void) {
        DomainCaps *c = new0(DomainCaps, 1);

        if (!c)
                return NULL;
        c->n_ref = 1;
        c->iothreads = DOMAIN_CAPS_ABSENT;
        for (size_t i = 0; i < _DOMAIN_CAPS_FEATURE_MAX; i++)
                c->features[i] = DOMAIN_CAPS_ABSENT;
        return c;
}

DomainCaps *domain_caps_ref(DomainCaps *c) {
        if (c)
                c->n_ref++;
        return c;
}

static void strv_free_n(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static void block_done(DomainCapsBlock *b) {
        for (size_t i = 0; i < b->n_enums; i++) {
                free(b->enums[i].name);
                strv_free_n(b->enums[i].values, b->enums[i].n_values);
        }
        free(b->enums);
}

DomainCaps *domain_caps_unref(DomainCaps *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        free(c->path);
        free(c->domain);
        free(c->machine);
        free(c->arch);
        block_done(&c->os);
        block_done(&c->loader);
        strv_free_n(c->loader_values, c->n_loader_values);
        free(c->host_model);
        free(c->host_model_vendor);
        strv_free_n(c->host_model_require, c->n_host_model_require);
        strv_free_n(c->host_model_disable, c->n_host_model_disable);
        block_done(&c->hyperv);
        for (size_t i = 0; i < c->n_cpu_models; i++) {
                free(c->cpu_models[i].name);
                free(c->cpu_models[i].vendor);
                strv_free_n(c->cpu_models[i].blockers, c->cpu_models[i].n_blockers);
        }
        free(c->cpu_models);
        block_done(&c->memory_backing);
        for (size_t i = 0; i < _DOMAIN_CAPS_DEVICE_MAX; i++)
                block_done(&c->devices[i]);
        free(c->xml);
        free(c);
        return NULL;
}

const DomainCapsEnum *domain_caps_enum_find(const DomainCapsBlock *b, const char *name) {
        for (size_t i = 0; i < b->n_enums; i++)
                if (streq(b->enums[i].name, name))
                        return &b->enums[i];
        return NULL;
}

bool domain_caps_enum_has(const DomainCapsBlock *b, const char *name, const char *value) {
        const DomainCapsEnum *e = domain_caps_enum_find(b, name);

        for (size_t i = 0; e && i < e->n_values; i++)
                if (streq(e->values[i], value))
                        return true;
        return false;
}

static int strv_push(char ***v, size_t *n, const char *s) {
        char **nv = realloc(*v, (*n + 1) * sizeof(char *));
        if (!nv)
                return -ENOMEM;
        *v = nv;
        nv[*n] = strdup(s);
        if (!nv[*n])
                return -ENOMEM;
        (*n)++;
        return 0;
}

int domain_caps_enum_add(DomainCapsBlock *b, const char *name, const char *value) {
        DomainCapsEnum *e = (DomainCapsEnum *) domain_caps_enum_find(b, name);

        b->present = true;
        if (!e) {
                DomainCapsEnum *ne = realloc(b->enums, (b->n_enums + 1) * sizeof(DomainCapsEnum));
                if (!ne)
                        return -ENOMEM;
                b->enums = ne;
                e = &ne[b->n_enums];
                *e = (DomainCapsEnum) { .name = strdup(name) };
                if (!e->name)
                        return -ENOMEM;
                b->n_enums++;
        }
        if (!value || domain_caps_enum_has(b, name, value))
                return 0;
        return strv_push(&e->values, &e->n_values, value);
}

char *domain_caps_enum_list(const DomainCapsBlock *b, const char *name) {
        const DomainCapsEnum *e = domain_caps_enum_find(b, name);
        StrBuf s = STRBUF_NULL;

        if (!e || e->n_values == 0)
                return strdup("none");
        for (size_t i = 0; i < e->n_values; i++)
                strbuf_appendf(&s, "%s'%s'", i > 0 ? ", " : "", e->values[i]);
        return strbuf_steal(&s);
}

int domain_caps_add_loader(DomainCaps *c, const char *path) {
        for (size_t i = 0; i < c->n_loader_values; i++)
                if (streq(c->loader_values[i], path))
                        return 0;
        return strv_push(&c->loader_values, &c->n_loader_values, path);
}

int domain_caps_add_cpu_model(DomainCaps *c, const char *name, const char *vendor, DomainCapsUsable usable,
                              bool deprecated, char * const *blockers, size_t n_blockers) {
        DomainCapsCpuModel *m = realloc(c->cpu_models, (c->n_cpu_models + 1) * sizeof(DomainCapsCpuModel));

        if (!m)
                return -ENOMEM;
        c->cpu_models = m;
        m = &m[c->n_cpu_models];
        *m = (DomainCapsCpuModel) { .usable = usable, .deprecated = deprecated };
        m->name = strdup(name);
        m->vendor = strdup(strempty(vendor));
        c->n_cpu_models++;
        if (!m->name || !m->vendor)
                return -ENOMEM;
        for (size_t i = 0; i < n_blockers; i++)
                if (strv_push(&m->blockers, &m->n_blockers, blockers[i]) < 0)
                        return -ENOMEM;
        return 0;
}

int domain_caps_add_host_model_feature(DomainCaps *c, const char *name, bool require) {
        if (require)
                return strv_push(&c->host_model_require, &c->n_host_model_require, name);
        return strv_push(&c->host_model_disable, &c->n_host_model_disable, name);
}
