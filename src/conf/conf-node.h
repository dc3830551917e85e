/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"
#include "util/macro.h"
#include "util/strbuf.h"

/* Our own small canonical model of an XML element. The typed parsers consume attributes, text and
 * children from a tree of these; whatever is left is the "extra" the typed code does not model, and
 * is merged back when formatting, so that nothing the user gave is lost.
 *
 * A child that typed code has looked at stays in its parent as a "used" node (holding whatever the
 * typed code did not take) so that it keeps its place; when formatting, the k-th used child named X
 * is merged into the k-th generated child named X. */
typedef struct ConfAttr {
        char *name;
        char *ns_href; /* NULL: no namespace */
        char *value;
} ConfAttr;

typedef struct ConfNode ConfNode;
struct ConfNode {
        char *name;
        char *ns_href; /* NULL: no namespace */
        ConfAttr *attrs;
        size_t n_attrs, n_attrs_allocated;
        ConfNode **children;
        size_t n_children, n_children_allocated;
        char *text; /* text content of a leaf element, as given */
        unsigned line;
        bool used;
        bool name_owned; /* name is ours to free (else it is interned, see conf_node_new) */
};

ConfNode *conf_node_new(const char *name);
ConfNode *conf_node_free(ConfNode *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(ConfNode *, conf_node_free);
ConfNode *conf_node_copy(const ConfNode *n);

/* Conversion from a libxml2 element (xmlNode *, as void * to keep libxml2 out of this header). */
ConfNode *conf_node_from_xml(const void *xml_node);

bool conf_node_is_empty(const ConfNode *n);
/* Gives n another element name (a snapshot's <inactiveDomain> is parsed as a <domain>). */
int conf_node_rename(ConfNode *n, const char *name);
bool conf_node_is(const ConfNode *n, const char *name);

/* Reading without consuming. */
const char *conf_node_attr(const ConfNode *n, const char *name);
ConfNode *conf_node_child(const ConfNode *n, const char *name);

/* Consuming: the caller owns the returned string. */
char *conf_node_take_attr(ConfNode *n, const char *name);
char *conf_node_take_text(ConfNode *n);
/* Returns the first not yet used child called name and marks it used; NULL if none. */
ConfNode *conf_node_use_child(ConfNode *n, const char *name);
/* Removes the child at index i from n and returns it. */
ConfNode *conf_node_detach_child(ConfNode *n, size_t i);

/* Building. All return -ENOMEM on failure. value NULL means "don't add". */
int conf_node_set_attr(ConfNode *n, const char *name, const char *value);
int conf_node_set_attrf(ConfNode *n, const char *name, const char *format, ...) _printf_(3, 4);
int conf_node_set_text(ConfNode *n, const char *text);
int conf_node_append(ConfNode *n, ConfNode *child); /* takes child, also on failure */
/* Adds and returns a new child element (NULL on ENOMEM). */
ConfNode *conf_node_add(ConfNode *n, const char *name);
/* Adds <name>text</name> when text is non-NULL. */
int conf_node_add_text(ConfNode *n, const char *name, const char *text);

/* Merges the residue of a parsed element (attributes, used and unused children) into the node the
 * typed code generated for it, and orders children canonically (see conf-order.c). Consumes residue. */
int conf_node_merge(ConfNode *gen, ConfNode *residue);
/* Orders the children of n and of its descendants canonically. */
void conf_node_sort(ConfNode *n);
/* Gives back the spare room of the attribute and child arrays of n and below (the typed parsers leave
 * most of them empty): kept definitions then take a fraction of the memory. */
void conf_node_compact(ConfNode *n);

/* Serialises n and its subtree as libvirt does: 2-space indentation, single-quoted attributes. */
int conf_node_format(const ConfNode *n, unsigned indent, StrBuf *b);
/* The same into a new string (the end of every *_format(): the typed struct's node, as text). */
int conf_node_format_string(const ConfNode *n, char **ret);

/* Parses xml, validates it against the named schema (conf_schema_parse_and_validate) and gives its root
 * element as a tree (the start of every *_parse_string()). */
int conf_node_parse_string(const char *xml, const char *schema, ConfNode **ret, VbError *reterr);

/* Child ordering tables (conf-order.c): rank of child within parent, or -1 if unknown. */
int conf_order_rank(const char *parent, const char *child);
bool conf_order_has_table(const char *parent);
