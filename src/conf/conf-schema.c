/* SPDX-License-Identifier: LGPL-2.1-or-later */
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

typedef struct SchemaCache {
        const char *name;
        xmlRelaxNGPtr rng;
} SchemaCache;

static SchemaCache schema_cache[] = {
        { "domain.rng" },
        { "device.rng" },
        { "network.rng" },
        { "nodedev.rng" },
        { "domaincaps.rng" },
};

static void (*schema_on_use)(void *userdata);
static void *schema_on_use_userdata;

void conf_schema_set_use_callback(void (*on_use)(void *userdata), void *userdata) {
        schema_on_use = on_use;
        schema_on_use_userdata = userdata;
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

unsigned conf_schema_release(void) {
        unsigned n = 0;

        for (size_t i = 0; i < ELEMENTSOF(schema_cache); i++)
                if (schema_cache[i].rng) {
                        xmlRelaxNGFree(schema_cache[i].rng);
                        schema_cache[i].rng = NULL;
                        n++;
                }
        if (n > 0)
                schema_text_drop();
        return n;
}

static int schema_get(const char *name, xmlRelaxNGPtr *ret) {
        _cleanup_free_ char *url = NULL;
        xmlRelaxNGParserCtxtPtr pctxt;
        SchemaCache *c = NULL;

        for (size_t i = 0; i < ELEMENTSOF(schema_cache); i++)
                if (streq(schema_cache[i].name, name))
                        c = &schema_cache[i];
        if (!c || !conf_schema_file_find(name))
                return -EOPNOTSUPP;
        if (!c->rng) {
                schema_install_loader();
                if (asprintf(&url, SCHEMA_BASE "%s", name) < 0)
                        return -ENOMEM;
                pctxt = xmlRelaxNGNewParserCtxt(url);
                if (!pctxt)
                        return -ENOMEM;
                xmlRelaxNGSetParserStructuredErrors(pctxt, schema_silent_error, NULL);
                c->rng = xmlRelaxNGParse(pctxt);
                xmlRelaxNGFreeParserCtxt(pctxt);
                if (!c->rng)
                        return log_debug_errno(EINVAL, "Failed to compile schema '%s'.", name);
        }
        *ret = c->rng;
        if (schema_on_use)
                schema_on_use(schema_on_use_userdata);
        return 0;
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
        if (!vctxt)
                return -ENOMEM;
        xmlRelaxNGSetValidStructuredErrors(vctxt, collect_error, &v);
        r = xmlRelaxNGValidateDoc(vctxt, doc);
        xmlRelaxNGFreeValidCtxt(vctxt);
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
