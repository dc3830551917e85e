/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* PPM in, PNG out: what Screenshot needs, and nothing more (8-bit RGB, no interlacing, no ancillary
 * chunks). The image data is deflated row by row, each row led by its filter type 0 (none): on a
 * guest's screen that costs little in size and keeps the encoder at memory speed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "util/png.h"

/* Width and height each at most this: far above any display, far below what overflows below. */
#define IMAGE_SIDE_MAX 32768U

static size_t parse_number(const char *p, size_t size, size_t i, uint32_t *ret) {
        uint64_t v = 0;
        size_t start;

        /* Whitespace and comments before each number. */
        for (;;) {
                while (i < size && strchr(" \t\r\n", p[i]) && p[i])
                        i++;
                if (i < size && p[i] == '#') {
                        while (i < size && p[i] != '\n')
                                i++;
                        continue;
                }
                break;
        }
        start = i;
        while (i < size && p[i] >= '0' && p[i] <= '9' && v <= IMAGE_SIDE_MAX)
                v = v * 10 + (uint64_t) (p[i++] - '0');
        if (i == start || v > IMAGE_SIDE_MAX || i >= size)
                return 0;
        *ret = (uint32_t) v;
        return i;
}

int ppm_parse(const void *data, size_t size, uint32_t *ret_width, uint32_t *ret_height, const uint8_t **ret_pixels) {
        const char *p = data;
        uint32_t w, h, maxval;
        size_t i;

        if (size < 3 || p[0] != 'P' || p[1] != '6')
                return -EBADMSG;
        i = parse_number(p, size, 2, &w);
        if (i > 0)
                i = parse_number(p, size, i, &h);
        if (i > 0)
                i = parse_number(p, size, i, &maxval);
        /* Exactly one whitespace byte ends the header. */
        if (i == 0 || maxval != 255 || w == 0 || h == 0 || !strchr(" \t\r\n", p[i]) || !p[i])
                return -EBADMSG;
        i++;
        if (size - i < (size_t) w * h * 3)
                return -EBADMSG;
        *ret_width = w;
        *ret_height = h;
        *ret_pixels = (const uint8_t *) p + i;
        return 0;
}

static uint8_t *put32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
        return p + 4;
}

/* Length, type, data (already at p + 8) and CRC of one chunk; returns its end. */
static uint8_t *finish_chunk(uint8_t *p, const char type[static 4], size_t length) {
        uLong crc;

        put32(p, (uint32_t) length);
        memcpy(p + 4, type, 4);
        crc = crc32(crc32(0L, Z_NULL, 0), p + 4, (uInt) (length + 4));
        return put32(p + 8 + length, (uint32_t) crc);
}

static int deflate_rows(z_stream *z, const uint8_t *pixels, uint32_t height, size_t row, size_t stride) {
        static const uint8_t filter_none = 0;

        for (uint32_t y = 0; y < height; y++) {
                z->next_in = (Bytef *) &filter_none;
                z->avail_in = 1;
                if (deflate(z, Z_NO_FLUSH) != Z_OK || z->avail_in != 0)
                        return -ENOBUFS;
                z->next_in = (Bytef *) (pixels + (size_t) y * stride);
                z->avail_in = (uInt) row;
                if (deflate(z, Z_NO_FLUSH) != Z_OK || z->avail_in != 0)
                        return -ENOBUFS;
        }
        return deflate(z, Z_FINISH) == Z_STREAM_END ? 0 : -ENOBUFS;
}

int png_encode_rgb(const uint8_t *pixels, uint32_t width, uint32_t height, size_t stride, int level, void **ret,
                   size_t *ret_size) {
        static const uint8_t signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
        z_stream z = {};
        size_t row = (size_t) width * 3, bound, total;
        uint8_t *out, *p;
        int r;

        if (width == 0 || height == 0 || width > IMAGE_SIDE_MAX || height > IMAGE_SIDE_MAX || stride < row)
                return -EINVAL;
        if (deflateInit(&z, level) != Z_OK)
                return -ENOMEM;
        /* deflateBound of the filtered data covers it whole: the output needs no second pass. */
        bound = deflateBound(&z, (uLong) ((row + 1) * height));
        total = sizeof signature + (12 + 13) + (12 + bound) + 12;
        out = malloc(total);
        if (!out) {
                deflateEnd(&z);
                return -ENOMEM;
        }
        memcpy(out, signature, sizeof signature);
        p = out + sizeof signature;
        /* IHDR: size, 8 bits per sample, colour type 2 (RGB), deflate, adaptive filtering, no interlace. */
        put32(p + 8, width);
        put32(p + 12, height);
        memcpy(p + 16, (const uint8_t[]) { 8, 2, 0, 0, 0 }, 5);
        p = finish_chunk(p, "IHDR", 13);

        z.next_out = p + 8;
        z.avail_out = (uInt) bound;
        r = deflate_rows(&z, pixels, height, row, stride);
        if (r < 0) {
                deflateEnd(&z);
                free(out);
                return r;
        }
        p = finish_chunk(p, "IDAT", z.total_out);
        deflateEnd(&z);
        p = finish_chunk(p, "IEND", 0);
        *ret_size = (size_t) (p - out);
        *ret = out;
        return 0;
}
