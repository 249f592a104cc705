//! A first-in, first-out queue in one `Vec`: what the shell's inbox needs of a `VecDeque`
//! (push at the back, take from the front) in a third of its code (~600 B of the wasm as two
//! `VecDeque`s of commands).

/// Items taken out in the order they were put in.
#[derive(Debug)]
pub struct Fifo<T> {
    /// Taken items leave a `None` until the queue empties or is compacted.
    items: Vec<Option<T>>,
    /// The first item not taken yet.
    head: usize,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo {
            items: Vec::new(),
            head: 0,
        }
    }
}

impl<T> Fifo<T> {
    /// Puts `item` in at the back.
    pub fn push(&mut self, item: T) {
        self.items.push(Some(item));
    }

    /// Takes the item at the front out.
    pub fn pop(&mut self) -> Option<T> {
        let item = self.items.get_mut(self.head)?.take();
        self.head += 1;
        if self.head == self.items.len() {
            self.items.clear();
            self.head = 0;
        } else if self.head >= 64 && self.head * 2 >= self.items.len() {
            // A queue fed as fast as it is taken never empties: the taken half goes.
            self.items = self.items.split_off(self.head);
            self.head = 0;
        }
        item
    }

    /// How many items are waiting.
    pub fn len(&self) -> usize {
        self.items.len() - self.head
    }

    /// Nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn takes_items_in_the_order_they_came_whatever_the_interleaving() {
        let (mut fifo, mut model) = (Fifo::default(), VecDeque::new());
        let mut next = 0u32;
        // Pushes and pops in runs of varying lengths, so that the queue empties, and also runs
        // long without emptying (its taken half compacted away).
        for round in 0..400u32 {
            for _ in 0..(round * 7) % 13 {
                fifo.push(next);
                model.push_back(next);
                next += 1;
            }
            for _ in 0..(round * 5) % 11 {
                assert_eq!(fifo.pop(), model.pop_front());
            }
            assert_eq!(fifo.len(), model.len());
            assert!(
                fifo.items.len() <= 2 * model.len() + 128,
                "taken items are let go"
            );
        }
        while let Some(v) = model.pop_front() {
            assert_eq!(fifo.pop(), Some(v));
        }
        assert_eq!(fifo.pop(), None);
        assert!(fifo.is_empty());
    }
}
