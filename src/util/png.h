/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* A binary PPM (P6, maxval 255) as QEMU's screendump writes it: the header is checked, *ret_pixels points
 * into data (width * height * 3 bytes, rows top to bottom). -EBADMSG if it is anything else. */
int ppm_parse(const void *data, size_t size, uint32_t *ret_width, uint32_t *ret_height, const uint8_t **ret_pixels);

/* Encodes 8-bit RGB rows (stride bytes apart) as a PNG: no filtering, one IDAT, deflate at level (1 is
 * fastest, as a screenshot wants). *ret (malloc'd) and *ret_size on success. Pure: safe from any thread. */
int png_encode_rgb(const uint8_t *pixels, uint32_t width, uint32_t height, size_t stride, int level, void **ret,
                   size_t *ret_size);
