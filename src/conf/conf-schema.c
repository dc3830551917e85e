/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/relaxng.h>
#include <libxml/xmlerror.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-schema.h"
#include "conf/conf-schema-hint.h"
#include "util/log.h"

/* Schemas live under this fake absolute path; the entity loader serves them from memory, so that
 * <include>/<externalRef> resolve without any file being installed. */
#define SCHEMA_BASE "/virtbus-schemas/"

static xmlExternalEntityLoader previous_loader;

const ConfSchemaFile *conf_schema_file_find(const char *name) {
        for (const ConfSchemaFile *f = conf_schema_files; f->name; f++)
                if (streq(f->name, name))
                        return f;
        return NULL;
}

static xmlParserInputPtr schema_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt) {
        const char *p = url ? strstr(url, SCHEMA_BASE) : NULL;
        const ConfSchemaFile *f;
        xmlParserInputBufferPtr buf;
        xmlParserInputPtr in;

        if (!p)
                return previous_loader ? previous_loader(url, id, ctxt) : NULL;
        f = conf_schema_file_find(p + strlen(SCHEMA_BASE));
        if (!f) {
                log_debug("Schema file '%s' is not embedded.", url);
                return NULL;
        }
        buf = xmlParserInputBufferCreateMem(f->data, (int) f->size, XML_CHAR_ENCODING_NONE);
        if (!buf)
                return NULL;
        in = xmlNewIOInputStream(ctxt, buf, XML_CHAR_ENCODING_NONE);
        if (!in) {
                xmlFreeParserInputBuffer(buf);
                return NULL;
        }
        in->filename = (char *) xmlStrdup((const xmlChar *) url);
        return in;
}

static void schema_install_loader(void) {
        xmlExternalEntityLoader cur = xmlGetExternalEntityLoader();

        if (cur == schema_entity_loader)
                return;
        previous_loader = cur;
        xmlSetExternalEntityLoader(schema_entity_loader);
}

static void schema_silent_error(void *userdata, xmlErrorPtr error) {
        log_debug("libxml2: %s", error && error->message ? error->message : "unknown error");
}

/* Documents are validated on the event loop and in the parse workers (src/bus/util/worker.c) at once:
 * the cache is shared under schema_lock, a compiled schema is used by several validation contexts at a
 * time (libxml2 allows that), and it is freed only when nobody uses it. */
typedef struct SchemaCache {
        const char *name;
        xmlRelaxNGPtr rng;
        unsigned users;
} SchemaCache;

static pthread_mutex_t schema_lock = PTHREAD_MUTEX_INITIALIZER;

static SchemaCache schema_cache[] = {
        { "domain.rng" },
        { "device.rng" },
        { "network.rng" },
        { "nodedev.rng" },
        { "domaincaps.rng" },
        { "storagepool.rng" },
        { "storagevol.rng" },
        { "domainsnapshot.rng" },
};

static void (*schema_on_use)(void *userdata);
static void *schema_on_use_userdata;
static pthread_t schema_on_use_thread;
/* A schema was used by another thread than on_use's since the last conf_schema_detach(). */
static bool schema_used_elsewhere;

void conf_schema_set_use_callback(void (*on_use)(void *userdata), void *userdata) {
        pthread_mutex_lock(&schema_lock);
        schema_on_use = on_use;
        schema_on_use_userdata = userdata;
        schema_on_use_thread = pthread_self();
        pthread_mutex_unlock(&schema_lock);
}

/* The schemas' text is read-only data of the binary: its pages can be dropped and are read again from
 * the file when the schemas are next compiled. */
static void schema_text_drop(void) {
        long page = sysconf(_SC_PAGESIZE);

        if (page <= 0)
                return;
        for (const ConfSchemaFile *f = conf_schema_files; f->name; f++) {
                uintptr_t start = ((uintptr_t) f->data + (uintptr_t) page - 1) & ~((uintptr_t) page - 1);
                uintptr_t end = ((uintptr_t) f->data + f->size) & ~((uintptr_t) page - 1);

                if (end > start)
                        (void) madvise((void *) start, end - start, MADV_DONTNEED);
        }
}

struct ConfSchemaDetached {
        size_t n;
        xmlRelaxNGPtr rng[ELEMENTSOF(schema_cache)];
};

int conf_schema_detach(ConfSchemaDetached **ret) {
        ConfSchemaDetached *d = new0(ConfSchemaDetached, 1);
        bool busy;

        if (!d)
                return -ENOMEM;
        pthread_mutex_lock(&schema_lock);
        busy = schema_used_elsewhere;
        schema_used_elsewhere = false;
        for (size_t i = 0; i < ELEMENTSOF(schema_cache) && !busy; i++)
                busy = schema_cache[i].users > 0;
        for (size_t i = 0; i < ELEMENTSOF(schema_cache) && !busy; i++)
                if (schema_cache[i].rng)
                        d->rng[d->n++] = TAKE_PTR(schema_cache[i].rng);
        pthread_mutex_unlock(&schema_lock);
        if (busy || d->n == 0) {
                free(d);
                *ret = NULL;
                return busy ? -EBUSY : 0;
        }
        *ret = d;
        return (int) d->n;
}

ConfSchemaDetached *conf_schema_detached_free(ConfSchemaDetached *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n; i++)
                xmlRelaxNGFree(d->rng[i]);
        /* Dropped even if a schema was compiled again meanwhile: the pages are read again on next use. */
        schema_text_drop();
        free(d);
        return NULL;
}

static int schema_compile_locked(SchemaCache *c) {
        _cleanup_free_ char *url = NULL;
        xmlRelaxNGParserCtxtPtr pctxt;

        schema_install_loader();
        if (asprintf(&url, SCHEMA_BASE "%s", c->name) < 0)
                return -ENOMEM;
        pctxt = xmlRelaxNGNewParserCtxt(url);
        if (!pctxt)
                return -ENOMEM;
        xmlRelaxNGSetParserStructuredErrors(pctxt, schema_silent_error, NULL);
        c->rng = xmlRelaxNGParse(pctxt);
        xmlRelaxNGFreeParserCtxt(pctxt);
        if (!c->rng)
                return log_debug_errno(EINVAL, "Failed to compile schema '%s'.", c->name);
        return 0;
}

/* The compiled schema, held (schema_put) so that conf_schema_detach() leaves it alone meanwhile. */
static int schema_get(const char *name, xmlRelaxNGPtr *ret) {
        void (*on_use)(void *userdata) = NULL;
        void *on_use_userdata = NULL;
        SchemaCache *c = NULL;
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(schema_cache); i++)
                if (streq(schema_cache[i].name, name))
                        c = &schema_cache[i];
        if (!c || !conf_schema_file_find(name))
                return -EOPNOTSUPP;
        pthread_mutex_lock(&schema_lock);
        if (!c->rng)
                r = schema_compile_locked(c);
        if (r >= 0) {
                c->users++;
                *ret = c->rng;
                if (schema_on_use && pthread_equal(pthread_self(), schema_on_use_thread)) {
                        on_use = schema_on_use;
                        on_use_userdata = schema_on_use_userdata;
                } else if (schema_on_use)
                        schema_used_elsewhere = true;
        }
        pthread_mutex_unlock(&schema_lock);
        /* On its own thread only (the daemon's event loop); others are seen by conf_schema_detach(). */
        if (on_use)
                on_use(on_use_userdata);
        return r;
}

void conf_schema_uses_seen(void) {
        void (*on_use)(void *userdata) = NULL;
        void *on_use_userdata = NULL;

        pthread_mutex_lock(&schema_lock);
        if (schema_on_use && schema_used_elsewhere && pthread_equal(pthread_self(), schema_on_use_thread)) {
                on_use = schema_on_use;
                on_use_userdata = schema_on_use_userdata;
        }
        pthread_mutex_unlock(&schema_lock);
        if (on_use)
                on_use(on_use_userdata);
}

static void schema_put(xmlRelaxNGPtr rng) {
        pthread_mutex_lock(&schema_lock);
        for (size_t i = 0; i < ELEMENTSOF(schema_cache); i++)
                if (schema_cache[i].rng == rng && schema_cache[i].users > 0)
                        schema_cache[i].users--;
        pthread_mutex_unlock(&schema_lock);
}

int conf_schema_compile_all(void) {
        int r = 0;

        pthread_mutex_lock(&schema_lock);
        for (size_t i = 0; i < ELEMENTSOF(schema_cache) && r >= 0; i++)
                if (!schema_cache[i].rng && conf_schema_file_find(schema_cache[i].name))
                        r = schema_compile_locked(&schema_cache[i]);
        pthread_mutex_unlock(&schema_lock);
        return r;
}

typedef struct ValidationErrors {
        xmlError *errors;
        size_t n, allocated;
} ValidationErrors;

static void collect_error(void *userdata, xmlErrorPtr error) {
        ValidationErrors *v = userdata;

        if (!error || !GREEDY_REALLOC(v->errors, v->allocated, v->n + 1))
                return;
        v->errors[v->n] = (xmlError) {};
        if (xmlCopyError(error, &v->errors[v->n]) == 0)
                v->n++;
}

int conf_schema_validate(void *doc, const char *schema, VbError *reterr) {
        ValidationErrors v = {};
        xmlRelaxNGValidCtxtPtr vctxt;
        xmlRelaxNGPtr rng = NULL;
        int r;

        r = schema_get(schema, &rng);
        if (r == -EOPNOTSUPP)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "No schema '%s'.", schema);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to load schema '%s'.", schema);
        vctxt = xmlRelaxNGNewValidCtxt(rng);
        if (!vctxt) {
                schema_put(rng);
                return -ENOMEM;
        }
        xmlRelaxNGSetValidStructuredErrors(vctxt, collect_error, &v);
        r = xmlRelaxNGValidateDoc(vctxt, doc);
        xmlRelaxNGFreeValidCtxt(vctxt);
        schema_put(rng);
        if (r != 0)
                r = conf_schema_report(v.errors, v.n, reterr);
        for (size_t i = 0; i < v.n; i++)
                xmlResetError(&v.errors[i]);
        free(v.errors);
        return r;
}

static int parse_error(xmlParserCtxtPtr ctxt, VbError *reterr) {
        xmlErrorPtr e = xmlCtxtGetLastError(ctxt);
        _cleanup_free_ char *msg = NULL;

        if (!e || !e->message)
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "Malformed XML document.");
        msg = strdup(e->message);
        if (!msg)
                return -ENOMEM;
        msg[strcspn(msg, "\n")] = 0;
        return vb_error_set(reterr, VB_ERROR_INVALID_XML, "line %d: malformed XML: %s", e->line, msg);
}

int conf_schema_parse_and_validate(const char *xml, const char *schema, void **ret_doc, VbError *reterr) {
        xmlParserCtxtPtr ctxt;
        xmlDocPtr doc;
        int r;

        if (!xml)
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "No XML document given.");
        if (strlen(xml) > 16 * 1024 * 1024)
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "XML document too large.");
        ctxt = xmlNewParserCtxt();
        if (!ctxt)
                return -ENOMEM;
        doc = xmlCtxtReadMemory(ctxt, xml, (int) strlen(xml), "input.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
        if (!doc) {
                r = parse_error(ctxt, reterr);
                xmlFreeParserCtxt(ctxt);
                return r;
        }
        xmlFreeParserCtxt(ctxt);
        if (doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc)) {
                xmlFreeDoc(doc);
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "Document type declarations are not allowed.");
        }
        r = conf_schema_validate(doc, schema, reterr);
        if (r < 0) {
                xmlFreeDoc(doc);
                return r;
        }
        *ret_doc = doc;
        return 0;
}
