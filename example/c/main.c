#include <stdio.h>
#include "greet.h"

int main(void) {
    printf("%s: %d\n", greeting(), answer());
    return 0;
}
