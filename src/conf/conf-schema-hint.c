/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libxml/parser.h>
#include <pthread.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <stdlib.h>

#include "conf/conf-schema-hint.h"
#include "conf/conf-schema.h"
#include "util/strbuf.h"

/* What the schemas allow for each (element, attribute): built once from the embedded schema
 * sources by walking every <attribute name=...> to its nearest <element name=...>. */
typedef struct AttrHint {
        char *element;
        char *attr;
        char **values;
        size_t n_values, allocated;
} AttrHint;

static AttrHint *hints;
static size_t n_hints, hints_allocated;
/* Built once, by whichever thread reports first (parsing runs off the event loop too). */
static pthread_once_t hints_once = PTHREAD_ONCE_INIT;

static AttrHint *hint_find(const char *element, const char *attr, bool create) {
        for (size_t i = 0; i < n_hints; i++)
                if (streq(hints[i].element, element) && streq(hints[i].attr, attr))
                        return &hints[i];
        if (!create || !GREEDY_REALLOC(hints, hints_allocated, n_hints + 1))
                return NULL;
        hints[n_hints] = (AttrHint) { .element = strdup(element), .attr = strdup(attr) };
        return &hints[n_hints++];
}

static bool is_rng(const xmlNode *n, const char *name) {
        return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, (const xmlChar *) name);
}

static void hint_add_values(AttrHint *h, xmlNode *n) {
        for (xmlNode *c = n->children; c; c = c->next) {
                if (is_rng(c, "value")) {
                        _cleanup_free_ char *v = (char *) xmlNodeGetContent(c);
                        bool dup = false;

                        for (size_t i = 0; v && i < h->n_values && !dup; i++)
                                dup = streq(h->values[i], v);
                        if (v && !dup && GREEDY_REALLOC(h->values, h->allocated, h->n_values + 1))
                                h->values[h->n_values++] = TAKE_PTR(v);
                } else if (is_rng(c, "choice") || is_rng(c, "optional"))
                        hint_add_values(h, c);
        }
}

static void hints_walk(xmlNode *n) {
        for (xmlNode *c = n; c; c = c->next) {
                if (is_rng(c, "attribute")) {
                        _cleanup_free_ char *attr = (char *) xmlGetProp(c, (const xmlChar *) "name");
                        _cleanup_free_ char *el = NULL;
                        AttrHint *h;

                        for (xmlNode *p = c->parent; p && !el; p = p->parent)
                                if (is_rng(p, "element"))
                                        el = (char *) xmlGetProp(p, (const xmlChar *) "name");
                        if (attr && el && (h = hint_find(el, attr, true)))
                                hint_add_values(h, c);
                }
                if (c->children)
                        hints_walk(c->children);
        }
}

static void hints_build(void) {
        for (const ConfSchemaFile *f = conf_schema_files; f->name; f++) {
                xmlDocPtr doc = xmlReadMemory(f->data, (int) f->size, f->name, NULL, XML_PARSE_NONET);

                if (!doc)
                        continue;
                hints_walk(xmlDocGetRootElement(doc));
                xmlFreeDoc(doc);
        }
}

static void hints_load(void) {
        (void) pthread_once(&hints_once, hints_build);
}

static bool hint_has_value(const AttrHint *h, const char *v) {
        for (size_t i = 0; i < h->n_values; i++)
                if (streq(h->values[i], v))
                        return true;
        return false;
}

static int report_attribute(const xmlError *e, VbError *reterr) {
        const char *attr = e->str1, *el = e->str2;
        xmlNode *node = e->node;
        _cleanup_free_ char *v = node ? (char *) xmlGetProp(node, (const xmlChar *) attr) : NULL;
        _cleanup_free_ char *expected = NULL;
        int line = node ? (int) xmlGetLineNo(node) : e->line;
        const AttrHint *h;
        StrBuf b = STRBUF_NULL;

        hints_load();
        h = hint_find(el, attr, false);
        if (!h)
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': unknown attribute '%s'", line, el, attr);
        if (h->n_values == 0 || (v && hint_has_value(h, v)))
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': attribute '%s' has invalid value '%s' or is not allowed here",
                                    line, el, attr, strempty(v));
        for (size_t i = 0; i < h->n_values; i++)
                strbuf_appendf(&b, "%s%s", i ? ", " : "", h->values[i]);
        expected = strbuf_steal(&b);
        return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                            "line %d: element '%s': attribute '%s' has invalid value '%s' (expected %s)",
                            line, el, attr, strempty(v), strempty(expected));
}

static int error_priority(const xmlError *e) {
        switch (e->code) {
        case XML_RELAXNG_ERR_INVALIDATTR:
                return 6;
        case XML_RELAXNG_ERR_ELEMWRONG:
        case XML_RELAXNG_ERR_EXTRACONTENT:
        case XML_RELAXNG_ERR_ELEMNAME:
        case XML_RELAXNG_ERR_NOELEM:
                return 5;
        case XML_RELAXNG_ERR_DATATYPE:
        case XML_RELAXNG_ERR_VALUE:
        case XML_RELAXNG_ERR_LIST:
        case XML_RELAXNG_ERR_NOTELEM:
                return 4;
        case XML_RELAXNG_ERR_ATTRVALID:
        case XML_RELAXNG_ERR_CONTENTVALID:
                return 1;
        default:
                return 2;
        }
}

static const char *node_name(const xmlError *e) {
        const xmlNode *n = e->node;

        return n && n->name ? (const char *) n->name : "?";
}

int conf_schema_report(const xmlError *errors, size_t n, VbError *reterr) {
        const xmlError *e = NULL;
        int line;

        for (size_t i = 0; i < n; i++)
                if (!e || error_priority(&errors[i]) > error_priority(e))
                        e = &errors[i];
        if (!e)
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "Document does not match the schema.");
        line = e->node ? (int) xmlGetLineNo(e->node) : e->line;
        /* Some errors (an interleave's) carry no node: the others reported with it point at the place. */
        for (size_t i = 0; i < n && line <= 0; i++)
                if (errors[i].node)
                        line = (int) xmlGetLineNo(errors[i].node);
        /* libxml2 names no value here: the element's text is what was refused. */
        if (e->code == XML_RELAXNG_ERR_VALUE && e->node && ((const xmlNode *) e->node)->type == XML_ELEMENT_NODE) {
                _cleanup_free_ char *v = (char *) xmlNodeGetContent(e->node);

                if (v) {
                        v[strcspn(v, "\n")] = 0;
                        return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                            "line %d: element '%s': '%s' is not one of the values allowed here",
                                            line, node_name(e), v);
                }
        }
        switch (e->code) {
        case XML_RELAXNG_ERR_INTEREXTRA:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s' does not fit here: not allowed in this place, given "
                                    "twice, or its attributes or content are not what is expected",
                                    line, strempty(e->str1));
        case XML_RELAXNG_ERR_INVALIDATTR:
                return report_attribute(e, reterr);
        case XML_RELAXNG_ERR_ELEMWRONG:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "line %d: element '%s' is not allowed here",
                                    line, strempty(e->str1));
        case XML_RELAXNG_ERR_EXTRACONTENT:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': unexpected child element '%s'",
                                    line, strempty(e->str1), strempty(e->str2));
        case XML_RELAXNG_ERR_ELEMNAME:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s' found where element '%s' was expected",
                                    line, strempty(e->str2), strempty(e->str1));
        case XML_RELAXNG_ERR_NOELEM:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': missing child element '%s'",
                                    line, node_name(e), strempty(e->str1));
        case XML_RELAXNG_ERR_DATATYPE:
                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "line %d: element '%s': value '%s' is not a valid %s",
                                    line, node_name(e), strempty(e->str2), strempty(e->str1));
        default: {
                _cleanup_free_ char *msg = strdup(strempty(e->message));

                if (!msg)
                        return -ENOMEM;
                msg[strcspn(msg, "\n")] = 0;
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "line %d: element '%s': %s",
                                    line, node_name(e), msg);
        }
        }
}
