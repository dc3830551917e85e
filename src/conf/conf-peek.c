/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libxml/xmlreader.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-peek.h"
#include "util/macro.h"

static void reader_freep(xmlTextReaderPtr *r) {
        if (*r)
                xmlFreeTextReader(*r);
}

int conf_peek_name(const char *xml, size_t max_bytes, char **ret) {
        _cleanup_(reader_freep) xmlTextReaderPtr reader = NULL;
        size_t len = strlen(xml);

        /* The reader only ever sees the first max_bytes: the work is bounded whatever follows. */
        if (len > max_bytes)
                len = max_bytes;
        reader = xmlReaderForMemory(xml, (int) len, "input.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!reader)
                return -ENOMEM;
        while (xmlTextReaderRead(reader) == 1) {
                const xmlChar *local, *uri;
                xmlChar *text;

                if (xmlTextReaderNodeType(reader) != XML_READER_TYPE_ELEMENT || xmlTextReaderDepth(reader) != 1)
                        continue;
                local = xmlTextReaderConstLocalName(reader);
                uri = xmlTextReaderConstNamespaceUri(reader);
                if (uri || !local || !xmlStrEqual(local, (const xmlChar *) "name"))
                        continue;
                text = xmlTextReaderReadString(reader);
                if (!text)
                        return 0;
                if (strlen((const char *) text) > CONF_PEEK_NAME_MAX) {
                        xmlFree(text);
                        return 0;
                }
                *ret = strdup((const char *) text);
                xmlFree(text);
                return *ret ? 1 : -ENOMEM;
        }
        return 0;
}
