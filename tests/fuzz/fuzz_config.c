/* libFuzzer harness for the recur command's config-file parser (config_read_file,
 * tools/config.c): an error names the file and the line; an accepted file gives a
 * configuration whose text form (config_to_text) is made. Built and run by
 * tests/fuzz/run.sh config. */
#include "config.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    const char *path = fuzz_write(0, "config", data, size);
    char msg[1024] = "";
    static config c;
    config_defaults(&c);
    if (config_read_file(&c, path, msg, sizeof msg) != 0) {
        fuzz_check_msg(msg, path);
        size_t n = strlen(path);
        if (msg[n] == ':' && !(msg[n + 1] >= '1' && msg[n + 1] <= '9') && !strstr(msg, "cannot open"))
            fuzz_die("message without a line number", msg);
        return 0;
    }
    char *t = config_to_text(&c);
    if (!t) abort();
    free(t);
    return 0;
}
