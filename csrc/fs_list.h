/* An intrusive doubly linked list: the element embeds an fs_list_node and
 * FS_LIST_ENTRY gets the element back from it.  Nothing here allocates or
 * locks; each list's owner guards it.  An all-zero fs_list is empty. */
#ifndef FASTSYNC_LIST_H
#define FASTSYNC_LIST_H

#include <stddef.h>

typedef struct fs_list_node {
    struct fs_list_node *next, *prev;
} fs_list_node;

typedef struct {
    fs_list_node *head, *tail;
} fs_list;

/* The element of type `type` whose member `member` is the node. */
#define FS_LIST_ENTRY(node, type, member) \
    ((type *)(void *)((char *)(node) - offsetof(type, member)))

static inline void fs_list_init(fs_list *list)
{ list->head = list->tail = NULL; }

static inline void fs_list_push_back(fs_list *list, fs_list_node *node)
{
    node->next = NULL;
    node->prev = list->tail;
    if (list->tail) list->tail->next = node; else list->head = node;
    list->tail = node;
}

/* Unlinks a node that is in the list. */
static inline void fs_list_remove(fs_list *list, fs_list_node *node)
{
    if (node->prev) node->prev->next = node->next; else list->head = node->next;
    if (node->next) node->next->prev = node->prev; else list->tail = node->prev;
    node->next = node->prev = NULL;
}

/* Unlinks and returns the first node, NULL if the list is empty. */
static inline fs_list_node *fs_list_pop_front(fs_list *list)
{
    fs_list_node *first = list->head;
    if (first != NULL)
        fs_list_remove(list, first);
    return first;
}

#endif /* FASTSYNC_LIST_H */
