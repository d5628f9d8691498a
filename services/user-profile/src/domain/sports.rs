//! Seed 000's sports list: every sport code the platform knows, served at `GET /sports` and the
//! only values a profile's `sports` accepts. Codes are stable; names are for display.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Sport {
    /// Stable code, stored in profiles.
    pub code: &'static str,
    /// English name.
    pub name: &'static str,
    /// French name.
    pub name_fr: &'static str,
}

const fn sport(code: &'static str, name: &'static str, name_fr: &'static str) -> Sport {
    Sport { code, name, name_fr }
}

pub const SPORTS: &[Sport] = &[
    sport("american_football", "American football", "Football américain"),
    sport("archery", "Archery", "Tir à l'arc"),
    sport("athletics", "Athletics", "Athlétisme"),
    sport("badminton", "Badminton", "Badminton"),
    sport("baseball", "Baseball", "Baseball"),
    sport("basketball", "Basketball", "Basket-ball"),
    sport("beach_volleyball", "Beach volleyball", "Beach-volley"),
    sport("bouldering", "Bouldering", "Bloc"),
    sport("bowling", "Bowling", "Bowling"),
    sport("boxing", "Boxing", "Boxe"),
    sport("canoeing", "Canoeing", "Canoë-kayak"),
    sport("climbing", "Climbing", "Escalade"),
    sport("cricket", "Cricket", "Cricket"),
    sport("cross_country_skiing", "Cross-country skiing", "Ski de fond"),
    sport("cycling", "Cycling", "Cyclisme"),
    sport("dance", "Dance", "Danse"),
    sport("darts", "Darts", "Fléchettes"),
    sport("diving", "Diving", "Plongeon"),
    sport("equestrian", "Equestrian", "Équitation"),
    sport("fencing", "Fencing", "Escrime"),
    sport("field_hockey", "Field hockey", "Hockey sur gazon"),
    sport("fitness", "Fitness", "Fitness"),
    sport("football", "Football (soccer)", "Football"),
    sport("futsal", "Futsal", "Futsal"),
    sport("golf", "Golf", "Golf"),
    sport("gymnastics", "Gymnastics", "Gymnastique"),
    sport("handball", "Handball", "Handball"),
    sport("hiking", "Hiking", "Randonnée"),
    sport("ice_hockey", "Ice hockey", "Hockey sur glace"),
    sport("ice_skating", "Ice skating", "Patinage"),
    sport("judo", "Judo", "Judo"),
    sport("karate", "Karate", "Karaté"),
    sport("kitesurfing", "Kitesurfing", "Kitesurf"),
    sport("martial_arts", "Martial arts", "Arts martiaux"),
    sport("motorsport", "Motorsport", "Sport automobile"),
    sport("mountain_biking", "Mountain biking", "VTT"),
    sport("padel", "Padel", "Padel"),
    sport("paragliding", "Paragliding", "Parapente"),
    sport("petanque", "Pétanque", "Pétanque"),
    sport("pilates", "Pilates", "Pilates"),
    sport("rowing", "Rowing", "Aviron"),
    sport("rugby", "Rugby", "Rugby"),
    sport("running", "Running", "Course à pied"),
    sport("sailing", "Sailing", "Voile"),
    sport("shooting", "Shooting", "Tir sportif"),
    sport("skateboarding", "Skateboarding", "Skateboard"),
    sport("skiing", "Alpine skiing", "Ski alpin"),
    sport("snowboarding", "Snowboarding", "Snowboard"),
    sport("squash", "Squash", "Squash"),
    sport("surfing", "Surfing", "Surf"),
    sport("swimming", "Swimming", "Natation"),
    sport("table_tennis", "Table tennis", "Tennis de table"),
    sport("taekwondo", "Taekwondo", "Taekwondo"),
    sport("tennis", "Tennis", "Tennis"),
    sport("trail_running", "Trail running", "Trail"),
    sport("triathlon", "Triathlon", "Triathlon"),
    sport("volleyball", "Volleyball", "Volley-ball"),
    sport("water_polo", "Water polo", "Water-polo"),
    sport("weightlifting", "Weightlifting", "Haltérophilie"),
    sport("windsurfing", "Windsurfing", "Planche à voile"),
    sport("wrestling", "Wrestling", "Lutte"),
    sport("yoga", "Yoga", "Yoga"),
];

pub fn is_known(code: &str) -> bool {
    SPORTS.binary_search_by(|s| s.code.cmp(code)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_unique_and_lower_snake_case() {
        assert!(
            SPORTS.windows(2).all(|w| w[0].code < w[1].code),
            "sorted, for binary search"
        );
        assert!(
            SPORTS
                .iter()
                .all(|s| s.code.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        assert!(is_known("tennis") && is_known("yoga") && !is_known("Tennis") && !is_known("quidditch"));
    }
}
