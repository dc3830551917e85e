/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench/xml: time per document and phase of the conf layer over a list of XML files (the corpus):
 *   parse     libxml2 reading the text into a tree (the options the service uses)
 *   validate  RelaxNG validation against our schema (compiled once, outside the timing)
 *   typed     our tree -> DomainDef / DeviceDef (typed parse, semantic checks, defaults)
 *   format    DomainDef -> canonical XML
 * Usage: xml KIND FILE... (KIND: domain or device); prints the median and p90 in µs per phase. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>

#include "conf/conf-node.h"
#include "conf/conf-schema.h"
#include "conf/device-conf.h"
#include "conf/domain-conf.h"
#include "util/fileio.h"

enum { PHASE_PARSE, PHASE_VALIDATE, PHASE_TYPED, PHASE_FORMAT, _PHASE_MAX };
static const char * const phase_names[] = { "parse", "validate", "typed", "format" };

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

/* One document, each phase timed; returns 0 if every phase succeeded. */
static int run_one(const char *kind, const char *xml, double t[_PHASE_MAX]) {
        const char *schema = strcmp(kind, "domain") == 0 ? "domain.rng" : "device.rng";
        double t0;
        xmlDocPtr doc;
        ConfNode *root;
        char *out = NULL;
        int r;

        t0 = now_us();
        doc = xmlReadMemory(xml, (int) strlen(xml), "input.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
        t[PHASE_PARSE] = now_us() - t0;
        if (!doc)
                return -1;

        t0 = now_us();
        r = conf_schema_validate(doc, schema, NULL);
        t[PHASE_VALIDATE] = now_us() - t0;
        if (r < 0) {
                xmlFreeDoc(doc);
                return -1;
        }

        t0 = now_us();
        root = conf_node_from_xml(xmlDocGetRootElement(doc));
        if (strcmp(kind, "domain") == 0) {
                DomainDef *def = NULL;
                r = root ? domain_def_parse_node(root, DOMAIN_PARSE_STABLE_DEFAULTS, &def, NULL) : -1;
                t[PHASE_TYPED] = now_us() - t0;
                if (r >= 0) {
                        t0 = now_us();
                        r = domain_def_format(def, DOMAIN_FORMAT_SECURE, &out);
                        t[PHASE_FORMAT] = now_us() - t0;
                }
                domain_def_free(def);
        } else {
                DeviceDef *dev = NULL;
                r = root ? device_def_parse_node(root, &dev, NULL) : -1;
                t[PHASE_TYPED] = now_us() - t0;
                if (r >= 0) {
                        t0 = now_us();
                        r = device_def_format(dev, DEVICE_FORMAT_SECURE, &out);
                        t[PHASE_FORMAT] = now_us() - t0;
                }
                device_def_free(dev);
        }
        free(out);
        xmlFreeDoc(doc);
        return r < 0 ? -1 : 0;
}

int main(int argc, char *argv[]) {
        double *v[_PHASE_MAX];
        size_t n = 0, skipped = 0;

        if (argc < 3) {
                fprintf(stderr, "usage: xml domain|device FILE...\n");
                return 2;
        }
        for (int p = 0; p < _PHASE_MAX; p++)
                v[p] = calloc((size_t) argc, sizeof(double));
        /* Compile the schema outside the timing: the service keeps it while it is used. */
        {
                double t[_PHASE_MAX];
                char *xml = NULL;
                if (read_full_file(argv[2], 0, &xml, NULL) >= 0)
                        (void) run_one(argv[1], xml, t);
                free(xml);
        }
        for (int i = 2; i < argc; i++) {
                double t[_PHASE_MAX] = {};
                char *xml = NULL;

                if (read_full_file(argv[i], 0, &xml, NULL) < 0 || run_one(argv[1], xml, t) < 0) {
                        skipped++;
                        free(xml);
                        continue;
                }
                for (int p = 0; p < _PHASE_MAX; p++)
                        v[p][n] = t[p];
                n++;
                free(xml);
        }
        printf("%s: %zu documents timed, %zu rejected or unreadable (not timed)\n", argv[1], n, skipped);
        for (int p = 0; p < _PHASE_MAX && n > 0; p++) {
                qsort(v[p], n, sizeof(double), cmp_double);
                printf("  %-9s median %7.1f µs   p90 %7.1f µs\n", phase_names[p], v[p][n / 2], v[p][n * 9 / 10]);
        }
        return 0;
}
