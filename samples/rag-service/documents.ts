/**
 * The sample service's knowledge base: a handful of short documents about a fictional bike-share
 * system, written for this project. Small on purpose, so a reader can see what is and is not in
 * it and predict which questions the guard should pass, flag or block.
 */
export interface SampleDocument {
  id: string
  title: string
  text: string
}

export const DOCUMENTS: SampleDocument[] = [
  {
    id: 'passes',
    title: 'Passes and prices',
    text: 'A single ride on Harbor City Bike Share costs $2.50 and lasts up to 30 minutes. A day pass costs $12 and includes unlimited rides of up to 45 minutes each for 24 hours. An annual membership costs $99 per year and includes unlimited 45-minute rides.',
  },
  {
    id: 'overtime',
    title: 'Overtime fees',
    text: 'Rides longer than the included time are charged $0.25 for each extra minute. The overtime fee is charged to the card on file when the bike is docked.',
  },
  {
    id: 'ebikes',
    title: 'Electric bikes',
    text: 'Electric bikes cost an extra $0.15 per minute on every pass. Electric bikes must be returned to a dock inside the service area, which covers the downtown, harbor and university districts.',
  },
  {
    id: 'hours',
    title: 'Opening hours',
    text: 'Bikes can be rented at every station 24 hours a day, every day of the year. Stations in the harbor district close during storm warnings issued by the city.',
  },
  {
    id: 'age',
    title: 'Who can ride',
    text: 'Riders must be at least 16 years old to rent a bike. Riders between 16 and 18 need a parent or guardian to accept the terms in the app.',
  },
  {
    id: 'lost',
    title: 'Lost or damaged bikes',
    text: 'Report a damaged bike by pressing the wrench button on the dock. A bike that is not returned within 24 hours is considered lost and the rider is charged a $1,200 replacement fee.',
  },
  {
    id: 'helmets',
    title: 'Helmets',
    text: 'Helmets are not provided at stations. The city recommends wearing a helmet on every ride, and riders under 18 are required by city law to wear one.',
  },
]
