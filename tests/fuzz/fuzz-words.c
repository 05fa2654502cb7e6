/*
 * fuzz-words.c -- libFuzzer harness for the splitting of a pipeline
 * stage's command into words (spool__split_words: quotes, backslashes,
 * no expansion), which reads text a user or a file gave.  Besides not
 * crashing: the words are as many as it says, each a string, and joining
 * them back with single quotes and splitting again gives the same words.
 * Built by "make fuzz" with clang (see Makefile.am).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool-int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Quote each word for the splitter: '...' with ' written as '"'"'. */
static char *
join(char **argv, size_t argc)
{
	size_t	 len = 1, i;
	char	*out, *w, *p;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) * 5 + 3;
	if ((out = malloc(len)) == NULL)
		return (NULL);
	w = out;
	for (i = 0; i < argc; i++) {
		if (i > 0)
			*w++ = ' ';
		*w++ = '\'';
		for (p = argv[i]; *p != '\0'; p++) {
			if (*p == '\'') {
				memcpy(w, "'\"'\"'", 5);
				w += 5;
			} else
				*w++ = *p;
		}
		*w++ = '\'';
	}
	*w = '\0';
	return (out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*s, **argv = NULL, **again = NULL, *joined;
	size_t	 argc = 0, n2 = 0, i;

	if ((s = malloc(size + 1)) == NULL)
		return (0);
	memcpy(s, data, size);
	s[size] = '\0';
	if (spool__split_words(NULL, s, &argv, &argc) == SPOOL_OK) {
		if (argv == NULL || argv[argc] != NULL)
			abort();
		if (argc > 0 && (joined = join(argv, argc)) != NULL) {
			if (spool__split_words(NULL, joined, &again, &n2) !=
			    SPOOL_OK || n2 != argc)
				abort();
			for (i = 0; i < argc; i++)
				if (strcmp(argv[i], again[i]) != 0)
					abort();
			spool__words_free(again);
			free(joined);
		}
		spool__words_free(argv);
	}
	free(s);
	return (0);
}
