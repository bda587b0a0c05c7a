//! The simulated chain's master data: products and stores, and their CSV form (docs/contract.md §3).

use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use crate::rng::{WeightedIndex, pick, round_price};

/// A category's shape: how many of the SKUs, what they cost, how they keep.
struct CategorySpec {
    name: &'static str,
    /// Share of the catalog's SKUs.
    share: f64,
    price: (f64, f64),
    /// Share of the category sold by weight (kg).
    weighed: f64,
    /// Shelf life in days for perishables, `None` for goods that keep.
    shelf_life: Option<(u32, u32)>,
    case_packs: &'static [u32],
    lead_time: (u32, u32),
    service_level: f64,
    /// Relative chance of being stolen (unrecorded shrink).
    theft: f64,
    subcategories: &'static [&'static str],
    nouns: &'static [&'static str],
    /// Pack sizes of goods sold by the piece.
    sizes: &'static [&'static str],
}

const CATEGORIES: &[CategorySpec] = &[
    CategorySpec {
        name: "Produce",
        share: 0.11,
        price: (0.49, 4.99),
        weighed: 0.6,
        shelf_life: Some((4, 10)),
        case_packs: &[6, 10, 12, 20],
        lead_time: (1, 2),
        service_level: 0.97,
        theft: 0.3,
        subcategories: &["Fruit", "Vegetables", "Salads", "Herbs"],
        nouns: &[
            "Apples",
            "Bananas",
            "Tomatoes",
            "Potatoes",
            "Onions",
            "Carrots",
            "Lettuce",
            "Oranges",
            "Lemons",
            "Peppers",
            "Cucumbers",
            "Grapes",
            "Pears",
            "Strawberries",
            "Spinach",
        ],
        sizes: &["500 g", "1 kg", "bag 1.5 kg", "tray 250 g"],
    },
    CategorySpec {
        name: "Dairy",
        share: 0.10,
        price: (0.59, 5.99),
        weighed: 0.0,
        shelf_life: Some((7, 21)),
        case_packs: &[6, 12, 24],
        lead_time: (1, 2),
        service_level: 0.98,
        theft: 0.3,
        subcategories: &["Milk", "Yogurt", "Butter", "Cream", "Eggs"],
        nouns: &[
            "Whole Milk",
            "Semi-skimmed Milk",
            "Greek Yogurt",
            "Natural Yogurt",
            "Butter",
            "Cream",
            "Free-range Eggs",
            "Kefir",
            "Custard",
        ],
        sizes: &["1 l", "500 ml", "pack of 4", "250 g", "dozen"],
    },
    CategorySpec {
        name: "Bakery",
        share: 0.05,
        price: (0.45, 4.50),
        weighed: 0.0,
        shelf_life: Some((1, 3)),
        case_packs: &[6, 10, 12],
        lead_time: (1, 1),
        service_level: 0.95,
        theft: 0.2,
        subcategories: &["Bread", "Pastry", "Cakes"],
        nouns: &[
            "Baguette",
            "Sourdough",
            "Croissants",
            "Rye Bread",
            "Muffins",
            "Brioche",
            "Rolls",
        ],
        sizes: &["400 g", "pack of 6", "pack of 4", "750 g"],
    },
    CategorySpec {
        name: "Meat",
        share: 0.06,
        price: (2.49, 19.99),
        weighed: 0.5,
        shelf_life: Some((3, 7)),
        case_packs: &[4, 6, 10],
        lead_time: (1, 2),
        service_level: 0.97,
        theft: 1.0,
        subcategories: &["Beef", "Pork", "Poultry", "Sausages"],
        nouns: &[
            "Chicken Breast",
            "Minced Beef",
            "Pork Loin",
            "Sausages",
            "Lamb Chops",
            "Turkey Slices",
            "Burgers",
        ],
        sizes: &["500 g", "1 kg", "pack of 8", "tray 400 g"],
    },
    CategorySpec {
        name: "Fish",
        share: 0.03,
        price: (3.49, 24.99),
        weighed: 0.7,
        shelf_life: Some((2, 4)),
        case_packs: &[4, 6],
        lead_time: (1, 1),
        service_level: 0.95,
        theft: 0.6,
        subcategories: &["Fresh Fish", "Seafood"],
        nouns: &[
            "Salmon Fillet",
            "Hake",
            "Cod",
            "Prawns",
            "Mussels",
            "Sea Bass",
            "Tuna Steak",
        ],
        sizes: &["300 g", "500 g", "tray 400 g"],
    },
    CategorySpec {
        name: "Deli",
        share: 0.05,
        price: (1.49, 12.99),
        weighed: 0.4,
        shelf_life: Some((7, 30)),
        case_packs: &[6, 12],
        lead_time: (1, 3),
        service_level: 0.96,
        theft: 1.2,
        subcategories: &["Cheese", "Cured Meats", "Ready Meals"],
        nouns: &[
            "Manchego",
            "Serrano Ham",
            "Chorizo",
            "Brie",
            "Hummus",
            "Lasagne",
            "Gazpacho",
        ],
        sizes: &["200 g", "150 g", "400 g"],
    },
    CategorySpec {
        name: "Frozen",
        share: 0.08,
        price: (1.29, 9.99),
        weighed: 0.0,
        shelf_life: None,
        case_packs: &[6, 8, 12],
        lead_time: (2, 4),
        service_level: 0.95,
        theft: 0.3,
        subcategories: &["Vegetables", "Pizza", "Ice Cream", "Fish"],
        nouns: &[
            "Peas",
            "Pizza",
            "Ice Cream",
            "Fish Fingers",
            "Chips",
            "Spinach",
            "Croquettes",
        ],
        sizes: &["400 g", "1 kg", "2 l", "pack of 12"],
    },
    CategorySpec {
        name: "Pantry",
        share: 0.18,
        price: (0.49, 7.99),
        weighed: 0.0,
        shelf_life: None,
        case_packs: &[6, 12, 24],
        lead_time: (2, 5),
        service_level: 0.95,
        theft: 0.2,
        subcategories: &[
            "Pasta & Rice",
            "Canned",
            "Oils",
            "Breakfast",
            "Sauces",
            "Baking",
        ],
        nouns: &[
            "Spaghetti",
            "Rice",
            "Olive Oil",
            "Chickpeas",
            "Tuna",
            "Cereal",
            "Flour",
            "Sugar",
            "Tomato Sauce",
            "Coffee",
            "Tea",
            "Honey",
            "Lentils",
            "Oats",
        ],
        sizes: &["500 g", "1 kg", "400 g", "750 ml", "250 g"],
    },
    CategorySpec {
        name: "Beverages",
        share: 0.10,
        price: (0.39, 5.99),
        weighed: 0.0,
        shelf_life: None,
        case_packs: &[6, 12, 24],
        lead_time: (2, 4),
        service_level: 0.96,
        theft: 0.4,
        subcategories: &["Water", "Soft Drinks", "Juice", "Coffee Drinks"],
        nouns: &[
            "Mineral Water",
            "Cola",
            "Orange Juice",
            "Sparkling Water",
            "Iced Tea",
            "Lemonade",
            "Energy Drink",
        ],
        sizes: &["1.5 l", "330 ml can", "pack of 6", "1 l", "2 l"],
    },
    CategorySpec {
        name: "Snacks",
        share: 0.08,
        price: (0.59, 4.99),
        weighed: 0.0,
        shelf_life: None,
        case_packs: &[12, 24],
        lead_time: (2, 5),
        service_level: 0.93,
        theft: 1.0,
        subcategories: &["Crisps", "Chocolate", "Biscuits", "Nuts"],
        nouns: &[
            "Crisps",
            "Dark Chocolate",
            "Biscuits",
            "Almonds",
            "Popcorn",
            "Gummies",
            "Cookies",
        ],
        sizes: &["150 g", "200 g", "100 g", "pack of 5"],
    },
    CategorySpec {
        name: "Alcohol",
        share: 0.05,
        price: (1.99, 29.99),
        weighed: 0.0,
        shelf_life: None,
        case_packs: &[6, 12],
        lead_time: (2, 6),
        service_level: 0.95,
        theft: 3.0,
        subcategories: &["Wine", "Beer", "Spirits"],
        nouns: &[
            "Rioja",
            "Albariño",
            "Lager",
            "Cava",
            "Gin",
            "Vermouth",
            "Craft Beer",
        ],
        sizes: &["75 cl", "pack of 6", "70 cl", "1 l"],
    },
    CategorySpec {
        name: "Household",
        share: 0.06,
        price: (0.99, 14.99),
        weighed: 0.0,
        shelf_life: None,
        case_packs: &[6, 12],
        lead_time: (3, 7),
        service_level: 0.92,
        theft: 0.5,
        subcategories: &["Cleaning", "Paper", "Laundry"],
        nouns: &[
            "Detergent",
            "Kitchen Roll",
            "Toilet Paper",
            "Bleach",
            "Sponges",
            "Bin Bags",
            "Dish Soap",
        ],
        sizes: &["pack of 12", "1 l", "2 l", "pack of 30"],
    },
    CategorySpec {
        name: "Personal Care",
        share: 0.05,
        price: (0.99, 12.99),
        weighed: 0.0,
        shelf_life: None,
        case_packs: &[6, 12],
        lead_time: (3, 7),
        service_level: 0.92,
        theft: 2.5,
        subcategories: &["Hair", "Oral Care", "Skin"],
        nouns: &[
            "Shampoo",
            "Toothpaste",
            "Shower Gel",
            "Deodorant",
            "Razors",
            "Sun Cream",
            "Hand Soap",
        ],
        sizes: &["250 ml", "75 ml", "400 ml", "pack of 5"],
    },
    CategorySpec {
        name: "Baby",
        share: 0.02,
        price: (1.99, 24.99),
        weighed: 0.0,
        shelf_life: None,
        case_packs: &[4, 6],
        lead_time: (3, 7),
        service_level: 0.97,
        theft: 1.5,
        subcategories: &["Nappies", "Baby Food"],
        nouns: &["Nappies", "Baby Wipes", "Infant Formula", "Fruit Puree"],
        sizes: &["pack of 48", "800 g", "pack of 72", "120 g"],
    },
];

const BRANDS: &[&str] = &[
    "Lakeside",
    "Sierra",
    "Costa Verde",
    "El Molino",
    "Nordic",
    "La Huerta",
    "Bonterra",
    "Aurora",
    "Monte Alto",
    "Valle",
    "Casa Luz",
    "Brisa",
    "Campo Real",
    "Marisol",
    "Oro Fino",
];

/// One product of the catalog.
#[derive(Debug, Clone)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub category: &'static str,
    pub subcategory: &'static str,
    pub brand: &'static str,
    /// Sold by the kilogram rather than by the piece.
    pub weighed: bool,
    pub case_pack: u32,
    pub unit_cost: Decimal,
    pub unit_price: Decimal,
    pub lead_time_days: u32,
    pub service_level: f64,
    /// Days a unit keeps on the shelf, for perishables.
    pub shelf_life_days: Option<u32>,
    /// Relative popularity (Zipf-like): the share of basket picks it draws.
    pub popularity: f64,
    /// Relative chance of unrecorded theft.
    pub theft: f64,
    /// Index of its supplier in [`Catalog::suppliers`].
    pub supplier: u32,
    /// The least quantity its supplier takes in one order (whole units), if any.
    pub min_order_qty: Option<u32>,
}

/// A supplier: who delivers a group of products, how long it takes, and on which weekdays
/// orders are taken.
#[derive(Debug, Clone)]
pub struct Supplier {
    pub supplier_id: String,
    pub name: String,
    pub lead_time_days: u32,
    /// Weekdays orders are taken, one bit each, Monday lowest (`0x7f`: every day).
    pub order_days: u8,
}

impl Supplier {
    /// Whether orders are taken on `weekday` (0 = Monday).
    pub fn orders_on(&self, weekday: u32) -> bool {
        self.order_days & (1 << (weekday % 7)) != 0
    }

    /// Days from an order on `weekday` to the next order day (1 to 7).
    pub fn review_days(&self, weekday: u32) -> u32 {
        (1..=7).find(|d| self.orders_on(weekday + d)).unwrap_or(7)
    }

    /// Weekdays as `suppliers.csv` writes them (`Mon Thu`; empty for every day).
    pub fn days_text(bits: u8) -> String {
        if bits & 0x7f == 0x7f {
            return String::new();
        }
        const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        (0..7)
            .filter(|d| bits & (1 << d) != 0)
            .map(|d| NAMES[d])
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The weekdays deliveries arrive: the order days moved on by the lead time.
    pub fn delivery_days(&self) -> u8 {
        let shift = self.lead_time_days % 7;
        (0..7u32)
            .filter(|d| self.orders_on(*d))
            .fold(0u8, |acc, d| acc | (1 << ((d + shift) % 7)))
    }
}

/// How big a store is and how it trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFormat {
    Hypermarket,
    Supermarket,
    Express,
}

impl StoreFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreFormat::Hypermarket => "hypermarket",
            StoreFormat::Supermarket => "supermarket",
            StoreFormat::Express => "express",
        }
    }
    /// Mean baskets on an average weekday.
    pub fn baskets_per_day(self) -> f64 {
        match self {
            StoreFormat::Hypermarket => 4500.0,
            StoreFormat::Supermarket => 2200.0,
            StoreFormat::Express => 900.0,
        }
    }
    /// Share of the catalog the store carries.
    pub fn assortment(self) -> f64 {
        match self {
            StoreFormat::Hypermarket => 1.0,
            StoreFormat::Supermarket => 0.7,
            StoreFormat::Express => 0.3,
        }
    }
    /// Opening and closing hour, local time.
    pub fn hours(self) -> (u32, u32) {
        match self {
            StoreFormat::Hypermarket => (9, 22),
            StoreFormat::Supermarket => (8, 21),
            StoreFormat::Express => (7, 23),
        }
    }
    pub fn registers(self) -> u32 {
        match self {
            StoreFormat::Hypermarket => 24,
            StoreFormat::Supermarket => 8,
            StoreFormat::Express => 3,
        }
    }
    /// Mean items in a basket: small shops see smaller baskets.
    pub fn basket_scale(self) -> f64 {
        match self {
            StoreFormat::Hypermarket => 1.4,
            StoreFormat::Supermarket => 1.0,
            StoreFormat::Express => 0.6,
        }
    }
}

/// One store of the chain.
#[derive(Debug, Clone)]
pub struct Store {
    pub store_id: String,
    pub name: String,
    pub format: StoreFormat,
    pub city: &'static str,
    pub region: &'static str,
    pub country: &'static str,
    pub timezone: chrono_tz::Tz,
    /// Indexes into the catalog of the products this store carries, ascending.
    pub assortment: Vec<u32>,
    /// The store's traffic relative to its format's mean.
    pub traffic: f64,
}

const CITIES: &[(&str, &str, &str, chrono_tz::Tz)] = &[
    (
        "Madrid",
        "Comunidad de Madrid",
        "ES",
        chrono_tz::Europe::Madrid,
    ),
    ("Barcelona", "Cataluña", "ES", chrono_tz::Europe::Madrid),
    (
        "Valencia",
        "Comunitat Valenciana",
        "ES",
        chrono_tz::Europe::Madrid,
    ),
    ("Sevilla", "Andalucía", "ES", chrono_tz::Europe::Madrid),
    ("Bilbao", "País Vasco", "ES", chrono_tz::Europe::Madrid),
    ("Zaragoza", "Aragón", "ES", chrono_tz::Europe::Madrid),
    ("Málaga", "Andalucía", "ES", chrono_tz::Europe::Madrid),
    ("Las Palmas", "Canarias", "ES", chrono_tz::Atlantic::Canary),
    ("Lisboa", "Lisboa", "PT", chrono_tz::Europe::Lisbon),
    ("Porto", "Norte", "PT", chrono_tz::Europe::Lisbon),
];

/// The chain: its products and its stores.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub products: Vec<Product>,
    pub stores: Vec<Store>,
    pub suppliers: Vec<Supplier>,
}

impl Catalog {
    /// Generates a chain of `stores` stores and `skus` products, reproducibly from `rng`.
    pub fn generate(rng: &mut ChaCha8Rng, stores: usize, skus: usize) -> Catalog {
        let mut products = generate_products(rng, skus);
        let stores = generate_stores(rng, stores, products.len());
        // suppliers from what the products already are (no draw of their own, so a seed's
        // products and stores stay what they were)
        let suppliers = assign_suppliers(&mut products);
        Catalog {
            products,
            stores,
            suppliers,
        }
    }

    /// Writes `products.csv`, `stores.csv` and `suppliers.csv` into `dir` (created if needed).
    pub fn write_csv(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut w = csv::Writer::from_path(dir.join("products.csv"))?;
        w.write_record([
            "sku",
            "name",
            "category",
            "subcategory",
            "brand",
            "unit_of_measure",
            "case_pack",
            "unit_cost",
            "unit_price",
            "lead_time_days",
            "service_level",
            "supplier_id",
            "min_order_qty",
            "shelf_life_days",
        ])?;
        for p in &self.products {
            w.write_record([
                p.sku.as_str(),
                p.name.as_str(),
                p.category,
                p.subcategory,
                p.brand,
                if p.weighed { "kg" } else { "each" },
                &p.case_pack.to_string(),
                &p.unit_cost.to_string(),
                &p.unit_price.to_string(),
                &p.lead_time_days.to_string(),
                &format!("{:.4}", p.service_level),
                &self.suppliers[p.supplier as usize].supplier_id,
                &p.min_order_qty.map(|q| q.to_string()).unwrap_or_default(),
                &p.shelf_life_days.map(|d| d.to_string()).unwrap_or_default(),
            ])?;
        }
        w.flush()?;
        let mut w = csv::Writer::from_path(dir.join("suppliers.csv"))?;
        w.write_record([
            "supplier_id",
            "name",
            "lead_time_days",
            "order_days",
            "delivery_days",
        ])?;
        for s in &self.suppliers {
            w.write_record([
                s.supplier_id.as_str(),
                s.name.as_str(),
                &s.lead_time_days.to_string(),
                &Supplier::days_text(s.order_days),
                &Supplier::days_text(s.delivery_days()),
            ])?;
        }
        w.flush()?;
        let mut w = csv::Writer::from_path(dir.join("stores.csv"))?;
        w.write_record([
            "store_id", "name", "format", "city", "region", "country", "timezone",
        ])?;
        for s in &self.stores {
            w.write_record([
                s.store_id.as_str(),
                s.name.as_str(),
                s.format.as_str(),
                s.city,
                s.region,
                s.country,
                s.timezone.name(),
            ])?;
        }
        w.flush()
    }
}

fn generate_products(rng: &mut ChaCha8Rng, n: usize) -> Vec<Product> {
    let shares = WeightedIndex::new(CATEGORIES.iter().map(|c| c.share).collect());
    // popularity ranks: a random permutation, Zipf–Mandelbrot weights 1/(rank + 10)^0.95 — a
    // long tail without one product in every basket
    let mut ranks: Vec<usize> = (1..=n).collect();
    for i in (1..ranks.len()).rev() {
        let j = rng.random_range(0..=i);
        ranks.swap(i, j);
    }
    (0..n)
        .map(|i| {
            let c = &CATEGORIES[shares.sample(rng)];
            let weighed = rng.random_bool(c.weighed);
            let (lo, hi) = c.price;
            // log-uniform prices: many cheap items, a few dear ones
            let price = (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp();
            let unit_price = round_price(price);
            let margin = 0.55 + rng.random::<f64>() * 0.25;
            let unit_cost =
                (unit_price * Decimal::try_from(margin).unwrap_or(Decimal::ONE)).round_dp(2);
            let brand = *pick(rng, BRANDS);
            let noun = pick(rng, c.nouns);
            let name = if weighed {
                format!("{brand} {noun} (per kg)")
            } else {
                format!("{brand} {noun} {}", pick(rng, c.sizes))
            };
            let shelf_life_days = c.shelf_life.map(|(a, b)| rng.random_range(a..=b));
            let service_level =
                (c.service_level + rng.random_range(-0.02..=0.01)).clamp(0.85, 0.995);
            Product {
                sku: format!("SKU-{:06}", i + 1),
                name,
                category: c.name,
                subcategory: c.subcategories[rng.random_range(0..c.subcategories.len())],
                brand,
                weighed,
                case_pack: *pick(rng, c.case_packs),
                unit_cost,
                unit_price,
                lead_time_days: rng.random_range(c.lead_time.0..=c.lead_time.1),
                service_level: (service_level * 100.0).round() / 100.0,
                shelf_life_days,
                popularity: 1.0 / (ranks[i] as f64 + 10.0).powf(0.95),
                theft: c.theft,
                supplier: 0,
                min_order_qty: None,
            }
        })
        .collect()
}

/// One supplier per category and lead time. Fresh goods are ordered every day; a supplier of
/// goods that keep takes orders every day, on Monday and Thursday, or on Tuesday and Friday
/// (by its place in the list). One in five products that keep have a minimum order of two cases.
fn assign_suppliers(products: &mut [Product]) -> Vec<Supplier> {
    let mut suppliers: Vec<Supplier> = Vec::new();
    let mut index: std::collections::HashMap<(&'static str, u32), u32> = Default::default();
    for (i, p) in products.iter_mut().enumerate() {
        let key = (p.category, p.lead_time_days);
        let n = suppliers.len() as u32;
        let si = *index.entry(key).or_insert_with(|| {
            let order_days = if p.shelf_life_days.is_some() {
                0x7f
            } else {
                match n % 3 {
                    0 => 0x7f,
                    1 => 0b000_1001,
                    _ => 0b001_0010,
                }
            };
            let short: String = p
                .category
                .chars()
                .filter(|c| c.is_ascii_alphabetic())
                .take(4)
                .collect::<String>()
                .to_uppercase();
            suppliers.push(Supplier {
                supplier_id: format!("SUP-{short}-{}", p.lead_time_days),
                name: format!(
                    "{} wholesale ({} day{})",
                    p.category,
                    p.lead_time_days,
                    if p.lead_time_days == 1 { "" } else { "s" }
                ),
                lead_time_days: p.lead_time_days,
                order_days,
            });
            n
        });
        p.supplier = si;
        if p.shelf_life_days.is_none() && i % 5 == 3 {
            p.min_order_qty = Some(p.case_pack * 2);
        }
    }
    suppliers
}

fn generate_stores(rng: &mut ChaCha8Rng, n: usize, products: usize) -> Vec<Store> {
    (0..n)
        .map(|i| {
            let &(city, region, country, timezone) = &CITIES[i % CITIES.len()];
            let roll: f64 = rng.random();
            let format = if roll < 0.15 {
                StoreFormat::Hypermarket
            } else if roll < 0.70 {
                StoreFormat::Supermarket
            } else {
                StoreFormat::Express
            };
            let share = format.assortment();
            // the most popular products are carried everywhere; the tail by chance
            let assortment = (0..products as u32)
                .filter(|_| rng.random_bool(share))
                .collect::<Vec<u32>>();
            let assortment = if assortment.is_empty() && products > 0 {
                vec![0]
            } else {
                assortment
            };
            let district = [
                "Centro", "Norte", "Sur", "Este", "Oeste", "Puerto", "Plaza", "Mercado", "Parque",
            ];
            Store {
                store_id: format!("ST-{:04}", i + 1),
                name: format!("stocklake {city} {} {}", pick(rng, &district), i + 1),
                format,
                city,
                region,
                country,
                timezone,
                assortment,
                traffic: 0.75 + rng.random::<f64>() * 0.5,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn catalog_is_reproducible_and_plausible() {
        let a = Catalog::generate(&mut ChaCha8Rng::seed_from_u64(7), 5, 500);
        let b = Catalog::generate(&mut ChaCha8Rng::seed_from_u64(7), 5, 500);
        assert_eq!(a.products.len(), 500);
        assert_eq!(a.stores.len(), 5);
        for (p, q) in a.products.iter().zip(&b.products) {
            assert_eq!(p.name, q.name);
            assert_eq!(p.unit_price, q.unit_price);
        }
        assert!(a.products.iter().any(|p| p.weighed));
        assert!(a.products.iter().any(|p| p.shelf_life_days.is_some()));
        assert!(a.products.iter().all(|p| p.unit_cost < p.unit_price));
        assert!(a.products.iter().all(|p| p.unit_price > Decimal::ZERO));
        assert!(a.stores.iter().all(|s| !s.assortment.is_empty()));
    }

    #[test]
    fn csv_files_have_the_contract_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Catalog::generate(&mut ChaCha8Rng::seed_from_u64(1), 3, 20);
        c.write_csv(dir.path()).expect("write");
        let p = std::fs::read_to_string(dir.path().join("products.csv")).expect("read");
        assert!(p.starts_with("sku,name,category,subcategory,brand,unit_of_measure,case_pack,unit_cost,unit_price,lead_time_days,service_level,supplier_id,min_order_qty,shelf_life_days\n"));
        let sup = std::fs::read_to_string(dir.path().join("suppliers.csv")).expect("read");
        assert!(sup.starts_with("supplier_id,name,lead_time_days,order_days,delivery_days\n"));
        assert!(
            c.products
                .iter()
                .all(|p| (p.supplier as usize) < c.suppliers.len())
        );
        assert_eq!(p.lines().count(), 21);
        let s = std::fs::read_to_string(dir.path().join("stores.csv")).expect("read");
        assert!(s.starts_with("store_id,name,format,city,region,country,timezone\n"));
        assert!(s.contains("Europe/Madrid"));
    }
}
