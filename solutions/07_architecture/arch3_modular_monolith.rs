// arch3_modular_monolith: modules own their data, and the compiler guards the border
//
// A modular monolith is one deployable program split into modules that each own their data
// and offer a small public facade. Other modules call the facade, never the tables behind it,
// so a module can change its storage without breaking its neighbours, and could later become
// a service of its own. In Rust the border is enforced, not just agreed on: an item is
// private to its module unless marked `pub`, so `orders` cannot reach `inventory::store`.
//
// Why it matters: in a big Rails app, the orders code decremented the stock column itself to
// "save a query". When inventory added reservations that expire, orders kept bypassing them,
// and the shop sold the same last item three times.
//
// Production caveat: privacy stops at the crate. Inside one crate, `pub(crate)` opens a door to
// every module; teams that need the border to hold at scale split the modules into crates of
// one Cargo workspace, so the dependency graph itself forbids the shortcut.
//
// What to do: `orders::place` (above) reaches into inventory's private store (below the tests
// line: another team's code), which does not compile.
// Reserve the order's lines through `InventoryApi` instead, and report a shortage as
// `OrderError::OutOfStock`.
// Run `backlings hint` if you are stuck.

pub mod orders {
    use super::inventory::{InventoryApi, StockError};

    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum OrderError {
        #[error("{sku}: only {available} left")]
        OutOfStock { sku: String, available: u32 },
        #[error("no such product: {0}")]
        UnknownProduct(String),
    }

    /// Orders' own data: the orders placed so far.
    #[derive(Default)]
    pub struct Orders {
        placed: Vec<Vec<(String, u32)>>,
    }

    impl Orders {
        pub fn placed(&self) -> usize {
            self.placed.len()
        }

        /// Places an order: its lines are reserved in inventory first. Returns its number.
        pub fn place(
            &mut self,
            inventory: &mut InventoryApi,
            lines: &[(&str, u32)],
        ) -> Result<usize, OrderError> {
            // Through the facade: all lines or none, and inventory's rules apply.
            inventory.reserve(lines).map_err(|e| match e {
                StockError::Insufficient { sku, available } => {
                    OrderError::OutOfStock { sku, available }
                }
                StockError::UnknownSku(sku) => OrderError::UnknownProduct(sku),
            })?;
            self.placed
                .push(lines.iter().map(|(s, q)| (s.to_string(), *q)).collect());
            Ok(self.placed.len())
        }
    }
}

fn main() {}

// Tests: do not edit below this line.

// Inventory belongs to another team: its module is part of what the tests rely on.
pub mod inventory {
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum StockError {
        #[error("unknown sku {0}")]
        UnknownSku(String),
        #[error("only {available} of {sku} left")]
        Insufficient { sku: String, available: u32 },
    }

    /// Inventory's own table. Private: nothing outside `inventory` can name it.
    mod store {
        use std::collections::BTreeMap;

        #[derive(Default)]
        pub(super) struct Store {
            pub(super) stock: BTreeMap<String, u32>,
        }

        /// Takes stock with no check at all: only the facade, which checks first, calls it.
        pub(super) fn reserve_raw(store: &mut Store, sku: &str, qty: u32) {
            *store.stock.get_mut(sku).expect("checked by the caller") -= qty;
        }
    }

    /// The facade: the only way into inventory.
    pub struct InventoryApi {
        store: store::Store,
        history: Vec<Vec<(String, u32)>>,
    }

    impl InventoryApi {
        pub fn with_stock(items: &[(&str, u32)]) -> Self {
            let stock: BTreeMap<String, u32> =
                items.iter().map(|(s, q)| (s.to_string(), *q)).collect();
            InventoryApi {
                store: store::Store { stock },
                history: Vec::new(),
            }
        }

        pub fn available(&self, sku: &str) -> Option<u32> {
            self.store.stock.get(sku).copied()
        }

        /// Every reservation made, in order: what the facade has let through.
        pub fn history(&self) -> &[Vec<(String, u32)>] {
            &self.history
        }

        /// Reserves every line, or none of them.
        pub fn reserve(&mut self, lines: &[(&str, u32)]) -> Result<(), StockError> {
            let mut wanted: BTreeMap<&str, u32> = BTreeMap::new();
            for (sku, qty) in lines {
                // Saturating: 2^32 mugs in two lines is still more than there are.
                let total = wanted.entry(sku).or_default();
                *total = total.saturating_add(*qty);
            }
            for (sku, qty) in &wanted {
                let available = self
                    .available(sku)
                    .ok_or_else(|| StockError::UnknownSku(sku.to_string()))?;
                if available < *qty {
                    return Err(StockError::Insufficient {
                        sku: sku.to_string(),
                        available,
                    });
                }
            }
            for (sku, qty) in &wanted {
                store::reserve_raw(&mut self.store, sku, *qty);
            }
            self.history
                .push(lines.iter().map(|(s, q)| (s.to_string(), *q)).collect());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::inventory::InventoryApi;
    use super::orders::{OrderError, Orders};

    fn owned(lines: &[(&str, u32)]) -> Vec<(String, u32)> {
        lines.iter().map(|(s, q)| (s.to_string(), *q)).collect()
    }

    #[test]
    fn placing_orders_reserves_stock_through_the_facade() {
        for (mug, tee, first, second) in [(5, 3, 2, 3), (9, 1, 4, 5)] {
            let mut inv = InventoryApi::with_stock(&[("mug", mug), ("tee", tee)]);
            let mut orders = Orders::default();
            let a = [("mug", first), ("tee", 1)];
            let b = [("mug", second)];
            assert_eq!(orders.place(&mut inv, &a), Ok(1));
            assert_eq!(orders.place(&mut inv, &b), Ok(2));
            assert_eq!(
                inv.available("mug"),
                Some(mug - first - second),
                "{mug} mugs, {first} + {second} ordered"
            );
            assert_eq!(inv.available("tee"), Some(tee - 1));
            assert_eq!(
                inv.history(),
                [owned(&a), owned(&b)],
                "every order goes through InventoryApi::reserve, which keeps the history"
            );
            assert_eq!(orders.placed(), 2);
        }
    }

    #[test]
    fn a_shortage_on_any_line_reserves_nothing() {
        for (short, available) in [("tee", 2), ("cap", 0)] {
            let mut inv = InventoryApi::with_stock(&[("mug", 5), ("tee", 2), ("cap", 0)]);
            let mut orders = Orders::default();
            let got = orders.place(&mut inv, &[("mug", 4), (short, 3)]);
            assert_eq!(
                got,
                Err(OrderError::OutOfStock {
                    sku: short.into(),
                    available
                }),
                "{short}: 3 wanted, {available} left"
            );
            assert_eq!(
                inv.available("mug"),
                Some(5),
                "the mugs of a refused order stay in stock: all lines or none"
            );
            assert!(inv.history().is_empty(), "nothing was reserved");
            assert_eq!(orders.placed(), 0, "a refused order is not placed");
        }
    }

    #[test]
    fn the_same_sku_on_two_lines_counts_twice() {
        let mut inv = InventoryApi::with_stock(&[("mug", 3)]);
        let mut orders = Orders::default();
        assert_eq!(
            orders.place(&mut inv, &[("mug", 2), ("mug", 2)]),
            Err(OrderError::OutOfStock {
                sku: "mug".into(),
                available: 3
            }),
            "2 + 2 mugs of 3: refused"
        );
        assert_eq!(orders.place(&mut inv, &[("mug", 1), ("mug", 2)]), Ok(1));
        assert_eq!(inv.available("mug"), Some(0));
    }

    #[test]
    fn an_unknown_product_is_a_domain_error() {
        let mut inv = InventoryApi::with_stock(&[("mug", 3)]);
        let mut orders = Orders::default();
        assert_eq!(
            orders.place(&mut inv, &[("mug", 1), ("hat", 1)]),
            Err(OrderError::UnknownProduct("hat".into()))
        );
        assert_eq!(inv.available("mug"), Some(3));
    }

    #[test]
    fn quantities_beyond_u32_are_refused_not_wrapped() {
        let mut inv = InventoryApi::with_stock(&[("mug", 3)]);
        let mut orders = Orders::default();
        assert_eq!(
            orders.place(&mut inv, &[("mug", u32::MAX), ("mug", 1)]),
            Err(OrderError::OutOfStock {
                sku: "mug".into(),
                available: 3
            }),
            "u32::MAX + 1 mugs must not wrap around to 0"
        );
        assert_eq!(inv.available("mug"), Some(3), "nothing was taken");
    }
}
