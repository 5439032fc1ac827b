/* Digits: a Cairn compute job that classifies 8x8 images of handwritten digits with a small
 * integer neural network, so that anyone can check a provider's answer by running it again.
 *
 * Input: a batch of N images, N = length / 64 (the empty input is a batch of none). Each image
 * is 64 bytes, its 8x8 pixels row by row, each an intensity 0..16 as in scikit-learn's digits.
 * Output: a line per image, "<class> <score0> ... <score9>\n" in decimal, the class being the
 * digit with the highest score (the lowest digit among equal scores). A batch with a partial
 * image or a pixel over 16 gives one error line instead, and no classes.
 *
 * The network, 64 -> 32 ReLU -> 10, and its int8 weights come from train.py (weights.h), which
 * describes the arithmetic below and computes the same scores in numpy.
 */
#include "../sdk/cairn_job.h"
#include "weights.h"

#define PIXELS 64
#define PIXEL_MAX 16
#define CLASSES 10
#define HIDDEN_MAX 127

/* Whether the batch is well formed; if not, writes the one error line. Run over the whole batch
 * before classifying, so that a bad image late in a batch leaves no partial output. */
static int check(const unsigned char *input, unsigned long len) {
    if (len % PIXELS) {
        cairn_write_str("error: input is ");
        cairn_write_uint(len);
        cairn_write_str(" bytes, not a whole number of 64-byte images (8x8 pixels, one byte each, 0-16)\n");
        return 0;
    }
    for (unsigned long i = 0; i < len; i++) {
        if (input[i] > PIXEL_MAX) {
            cairn_write_str("error: image ");
            cairn_write_uint(i / PIXELS);
            cairn_write_str(" pixel ");
            cairn_write_uint(i % PIXELS);
            cairn_write_str(" is ");
            cairn_write_uint(input[i]);
            cairn_write_str(", pixels must be 0-16\n");
            return 0;
        }
    }
    return 1;
}

/* Writes one image's line. The sums stay far inside int32: train.py asserts the worst case. */
static void classify(const unsigned char *image) {
    int hidden[DIGITS_HIDDEN];
    for (int j = 0; j < DIGITS_HIDDEN; j++) {
        int acc = DIGITS_B1[j];
        for (int i = 0; i < PIXELS; i++) acc += image[i] * DIGITS_W1[j][i];
        /* ReLU, then back to 0..127 by a rounding shift: layer 2's inputs stay int8. */
        if (acc < 0) acc = 0;
        acc = (acc + ((1 << DIGITS_SHIFT) >> 1)) >> DIGITS_SHIFT;
        hidden[j] = acc > HIDDEN_MAX ? HIDDEN_MAX : acc;
    }
    int scores[CLASSES];
    int best = 0;
    for (int k = 0; k < CLASSES; k++) {
        int score = DIGITS_B2[k];
        for (int j = 0; j < DIGITS_HIDDEN; j++) score += hidden[j] * DIGITS_W2[k][j];
        scores[k] = score;
        if (score > scores[best]) best = k;
    }
    cairn_write_uint((unsigned long long)best);
    for (int k = 0; k < CLASSES; k++) {
        cairn_write_char(' ');
        cairn_write_int(scores[k]);
    }
    cairn_write_char('\n');
}

void cairn_job(const unsigned char *input, unsigned long len) {
    if (!check(input, len)) return;
    for (unsigned long at = 0; at < len; at += PIXELS) classify(input + at);
}
