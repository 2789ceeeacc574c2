/* bivyd layer 5 (control API): streaming answers (monitor --follow, logs -f). */
#ifndef BIVYD_FOLLOW_H
#define BIVYD_FOLLOW_H

void follow_init(void);

#endif
