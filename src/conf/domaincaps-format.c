/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain capabilities to XML, in libvirt's element order. */
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-node.h"
#include "conf/domaincaps-conf.h"

static const char *yes_no(bool b) {
        return b ? "yes" : "no";
}

static int add_enums(ConfNode *n, const DomainCapsBlock *b) {
        for (size_t i = 0; i < b->n_enums; i++) {
                ConfNode *e = conf_node_add(n, "enum");

                if (!e || conf_node_set_attr(e, "name", b->enums[i].name) < 0)
                        return -ENOMEM;
                for (size_t j = 0; j < b->enums[i].n_values; j++)
                        if (conf_node_add_text(e, "value", b->enums[i].values[j]) < 0)
                                return -ENOMEM;
        }
        return 0;
}

/* <name supported='..'> with its enums; NULL-safe ret for callers that add more. */
static int add_block(ConfNode *parent, const char *name, const DomainCapsBlock *b, ConfNode **ret) {
        ConfNode *n;

        if (!b->present)
                return 0;
        n = conf_node_add(parent, name);
        if (!n || conf_node_set_attr(n, "supported", yes_no(b->supported)) < 0)
                return -ENOMEM;
        if (ret)
                *ret = n;
        return add_enums(n, b);
}

static int add_os(ConfNode *root, const DomainCaps *c) {
        ConfNode *os = NULL, *loader;

        if (!c->os.present)
                return 0;
        if (add_block(root, "os", &c->os, &os) < 0)
                return -ENOMEM;
        if (!c->loader.present)
                return 0;
        /* The values come before the enums. */
        loader = conf_node_add(os, "loader");
        if (!loader || conf_node_set_attr(loader, "supported", yes_no(c->loader.supported)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_loader_values; i++)
                if (conf_node_add_text(loader, "value", c->loader_values[i]) < 0)
                        return -ENOMEM;
        return add_enums(loader, &c->loader);
}

static ConfNode *add_mode(ConfNode *cpu, const char *name, bool supported) {
        ConfNode *m = conf_node_add(cpu, "mode");

        if (!m || conf_node_set_attr(m, "name", name) < 0 || conf_node_set_attr(m, "supported", yes_no(supported)) < 0)
                return NULL;
        return m;
}

static int add_cpu_models(ConfNode *custom, const DomainCaps *c) {
        for (size_t i = 0; i < c->n_cpu_models; i++) {
                const DomainCapsCpuModel *m = &c->cpu_models[i];
                ConfNode *n = conf_node_add(custom, "model"), *b;

                if (!n || conf_node_set_attr(n, "usable", domain_caps_usable_to_string(m->usable)) < 0 ||
                    (m->deprecated && conf_node_set_attr(n, "deprecated", "yes") < 0) ||
                    conf_node_set_attr(n, "vendor", m->vendor) < 0 || conf_node_set_text(n, m->name) < 0)
                        return -ENOMEM;
                if (m->n_blockers == 0)
                        continue;
                b = conf_node_add(custom, "blockers");
                if (!b || conf_node_set_attr(b, "model", m->name) < 0)
                        return -ENOMEM;
                for (size_t j = 0; j < m->n_blockers; j++) {
                        ConfNode *f = conf_node_add(b, "feature");
                        if (!f || conf_node_set_attr(f, "name", m->blockers[j]) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

/* <enum name='NAME'><value>on</value><value>off</value></enum> in mode m. */
static int add_on_off(ConfNode *m, const char *name) {
        ConfNode *e = conf_node_add(m, "enum");

        if (!e || conf_node_set_attr(e, "name", name) < 0 || conf_node_add_text(e, "value", "on") < 0 ||
            conf_node_add_text(e, "value", "off") < 0)
                return -ENOMEM;
        return 0;
}

static int add_host_model(ConfNode *hm, const DomainCaps *c) {
        ConfNode *model = conf_node_add(hm, "model");

        if (!model || conf_node_set_attr(model, "fallback", "forbid") < 0 || conf_node_set_text(model, c->host_model) < 0 ||
            (c->host_model_vendor && conf_node_add_text(hm, "vendor", c->host_model_vendor) < 0))
                return -ENOMEM;
        for (size_t k = 0; k < 2; k++) {
                char * const *v = k == 0 ? c->host_model_require : c->host_model_disable;
                size_t n = k == 0 ? c->n_host_model_require : c->n_host_model_disable;

                for (size_t i = 0; i < n; i++) {
                        ConfNode *f = conf_node_add(hm, "feature");
                        if (!f || conf_node_set_attr(f, "policy", k == 0 ? "require" : "disable") < 0 ||
                            conf_node_set_attr(f, "name", v[i]) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

static int add_cpu(ConfNode *root, const DomainCaps *c) {
        ConfNode *cpu, *pt, *max, *hm, *custom;

        if (!c->cpu_present)
                return 0;
        cpu = conf_node_add(root, "cpu");
        if (!cpu || !(pt = add_mode(cpu, "host-passthrough", c->cpu_host_passthrough)) ||
            (c->cpu_host_passthrough && c->cpu_host_passthrough_migratable &&
             add_on_off(pt, "hostPassthroughMigratable") < 0) ||
            !(max = add_mode(cpu, "maximum", c->cpu_maximum)) ||
            (c->cpu_maximum && c->cpu_maximum_migratable && add_on_off(max, "maximumMigratable") < 0))
                return -ENOMEM;
        hm = add_mode(cpu, "host-model", c->cpu_host_model);
        if (!hm)
                return -ENOMEM;
        if (c->cpu_host_model && c->host_model && add_host_model(hm, c) < 0)
                return -ENOMEM;
        custom = add_mode(cpu, "custom", c->cpu_custom);
        if (!custom)
                return -ENOMEM;
        return add_cpu_models(custom, c);
}

static int add_devices(ConfNode *root, const DomainCaps *c) {
        ConfNode *devices;

        if (!c->devices_present)
                return 0;
        devices = conf_node_add(root, "devices");
        if (!devices)
                return -ENOMEM;
        for (DomainCapsDevice i = 0; i < _DOMAIN_CAPS_DEVICE_MAX; i++)
                if (add_block(devices, domain_caps_device_to_string(i), &c->devices[i], NULL) < 0)
                        return -ENOMEM;
        return 0;
}

static int add_features(ConfNode *root, const DomainCaps *c) {
        ConfNode *features;

        if (!c->features_present)
                return 0;
        features = conf_node_add(root, "features");
        if (!features)
                return -ENOMEM;
        for (DomainCapsFeature i = 0; i < _DOMAIN_CAPS_FEATURE_MAX; i++) {
                ConfNode *f;

                /* <hyperv> comes before <launchSecurity>. */
                if (i == DOMAIN_CAPS_FEATURE_LAUNCH_SECURITY && add_block(features, "hyperv", &c->hyperv, NULL) < 0)
                        return -ENOMEM;
                if (c->features[i] == DOMAIN_CAPS_ABSENT)
                        continue;
                f = conf_node_add(features, domain_caps_feature_to_string(i));
                if (!f || conf_node_set_attr(f, "supported", yes_no(c->features[i] == DOMAIN_CAPS_YES)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int domain_caps_format(const DomainCaps *c, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *root = conf_node_new("domainCapabilities");

        if (!root || conf_node_add_text(root, "path", c->path) < 0 ||
            conf_node_add_text(root, "domain", strempty(c->domain)) < 0 ||
            conf_node_add_text(root, "machine", c->machine) < 0 ||
            conf_node_add_text(root, "arch", strempty(c->arch)) < 0)
                return -ENOMEM;
        if (c->vcpu_max > 0) {
                ConfNode *v = conf_node_add(root, "vcpu");
                if (!v || conf_node_set_attrf(v, "max", "%u", c->vcpu_max) < 0)
                        return -ENOMEM;
        }
        if (c->iothreads != DOMAIN_CAPS_ABSENT) {
                ConfNode *t = conf_node_add(root, "iothreads");
                if (!t || conf_node_set_attr(t, "supported", yes_no(c->iothreads == DOMAIN_CAPS_YES)) < 0)
                        return -ENOMEM;
        }
        if (add_os(root, c) < 0 || add_cpu(root, c) < 0 ||
            add_block(root, "memoryBacking", &c->memory_backing, NULL) < 0 || add_devices(root, c) < 0 ||
            add_features(root, c) < 0)
                return -ENOMEM;
        return conf_node_format_string(root, ret);
}

const char *domain_caps_xml(DomainCaps *c) {
        if (!c->xml)
                (void) domain_caps_format(c, &c->xml);
        return c->xml;
}
