//! The one merge rule of settings layers: a field given by a higher layer
//! (flag, then environment, then config file) wins, a field it leaves out
//! comes from the layer below.

use std::collections::BTreeMap;

/// A settings layer, or a field of one, that can be stacked on a lower
/// one.
pub trait Layer {
    /// `self`, with what it leaves out taken from `lower`.
    fn or(self, lower: Self) -> Self;
}

impl<T> Layer for Option<T> {
    fn or(self, lower: Self) -> Self {
        Option::or(self, lower)
    }
}

/// A list is given or not as a whole.
impl<T> Layer for Vec<T> {
    fn or(self, lower: Self) -> Self {
        if self.is_empty() { lower } else { self }
    }
}

/// A table is given or not as a whole.
impl<K, V> Layer for BTreeMap<K, V> {
    fn or(self, lower: Self) -> Self {
        if self.is_empty() { lower } else { self }
    }
}

/// Declare a settings struct (its fields, with their clap and serde
/// attributes, written once) and implement [`Layer`] for it field by
/// field.
macro_rules! layered {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$field_meta])* $field_vis $field: $ty ),*
        }

        impl $crate::server::config::Layer for $name {
            fn or(self, lower: Self) -> Self {
                $name {
                    $( $field: $crate::server::config::Layer::or(self.$field, lower.$field) ),*
                }
            }
        }
    };
}

pub(crate) use layered;
