//! Interning: one shared copy of each distinct value (the bindings cache's strings and
//! shared parts).

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

/// One of each distinct value, shared by everything that holds it.
#[derive(Debug)]
pub struct Interner<T: ?Sized + Eq + Hash> {
    pub values: HashSet<Arc<T>>,
}

impl<T: ?Sized + Eq + Hash> Default for Interner<T> {
    fn default() -> Self {
        Self {
            values: HashSet::new(),
        }
    }
}

impl<T: ?Sized + Eq + Hash> Interner<T> {
    pub fn get(&mut self, value: &T) -> Option<Arc<T>> {
        self.values.get(value).cloned()
    }

    pub fn insert(&mut self, value: Arc<T>) -> Arc<T> {
        self.values.insert(value.clone());
        value
    }

    /// Forgets `value` when nothing but the interner holds it any longer; called by the
    /// last holder just before it lets go (hence two references: its own and ours).
    pub fn release(&mut self, value: &Arc<T>) {
        if Arc::strong_count(value) <= 2 {
            self.values.remove(value);
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }
}

impl Interner<str> {
    pub fn string(&mut self, value: &str) -> Arc<str> {
        self.get(value)
            .unwrap_or_else(|| self.insert(Arc::from(value)))
    }
}

impl<T: Eq + Hash> Interner<T> {
    pub fn value(&mut self, value: T) -> Arc<T> {
        self.get(&value)
            .unwrap_or_else(|| self.insert(Arc::new(value)))
    }
}
