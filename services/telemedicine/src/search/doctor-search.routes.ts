import { type KeelApp, problemResponses } from '@keel/platform/http';
import type { Static } from 'typebox';
import { DoctorSearchPageResponse, SearchDoctorsQuery } from './doctor-search.schemas.ts';
import type { DoctorSearchService } from './doctor-search.service.ts';
import type { DoctorSearchInput, DoctorSearchItem, DoctorSearchPage } from './doctor-search.ts';

const TAGS = ['search'];

function toDoctorSearchItemResponse(item: DoctorSearchItem) {
  return {
    id: item.id,
    full_name: item.fullName,
    specialties: item.specialties,
    languages: item.languages,
    years_of_experience: item.yearsOfExperience,
    fee_minor: item.feeMinor,
    currency: item.currency,
    rating: item.rating,
    rating_count: item.ratingCount,
    next_available_at: item.nextAvailableAt,
    bio_excerpt: item.bioExcerpt,
  };
}

export function toDoctorSearchPageResponse(page: DoctorSearchPage): Static<typeof DoctorSearchPageResponse> {
  return { items: page.items.map(toDoctorSearchItemResponse), next_cursor: page.nextCursor };
}

function toDoctorSearchInput(query: Static<typeof SearchDoctorsQuery>): DoctorSearchInput {
  return {
    limit: query.limit,
    ...(query.q === undefined ? {} : { text: query.q }),
    ...(query.specialty === undefined ? {} : { specialty: query.specialty }),
    ...(query.language === undefined ? {} : { language: query.language }),
    ...(query.fee_min === undefined ? {} : { feeMin: query.fee_min }),
    ...(query.fee_max === undefined ? {} : { feeMax: query.fee_max }),
    ...(query.currency === undefined ? {} : { currency: query.currency }),
    ...(query.min_rating === undefined ? {} : { minRating: query.min_rating }),
    ...(query.available_on === undefined ? {} : { availableOn: query.available_on }),
    ...(query.time_zone === undefined ? {} : { timeZone: query.time_zone }),
    ...(query.available_within_days === undefined
      ? {}
      : { availableWithinDays: query.available_within_days }),
    ...(query.sort === undefined ? {} : { sort: query.sort }),
    ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
  };
}

export function registerDoctorSearchRoutes(app: KeelApp, search: DoctorSearchService): void {
  app.get(
    '/search/doctors',
    {
      config: { access: 'public' },
      schema: {
        operationId: 'searchDoctors',
        tags: TAGS,
        summary: 'Search verified doctors',
        description:
          'Lists verified doctors only. Filters combine (all must hold): free text `q` over name and ' +
          'specialties (full text with English stemming, and typo-tolerant name matching), `specialty` ' +
          '(exact, case-insensitive), `language`, fee range and `currency`, `min_rating` (unrated doctors ' +
          'are left out), and availability: an open slot on the local date `available_on` in `time_zone`, ' +
          'or within `available_within_days` from now. Keyset-paginated: pass `next_cursor` back as ' +
          '`cursor` with the same filters and sort (another combination answers ' +
          '`telemedicine.invalid_cursor`). Results may be cached for a few seconds.',
        querystring: SearchDoctorsQuery,
        response: { 200: DoctorSearchPageResponse, ...problemResponses(400, 429) },
      },
    },
    async (request) =>
      toDoctorSearchPageResponse(await search.searchDoctors(toDoctorSearchInput(request.query))),
  );
}
